#!/usr/bin/env python3
"""A reader of ckpt checkpoint files in Python and numpy alone, from docs/format.md: the sketch
of its "A reader in Python" grown to every check of "What a reader checks" (structure, exact
layout, zero padding, every checksum) and to every entry kind and dtype.

    python3 read_ckpt.py FILE...     prints each file's metadata and every entry with its values
                                     (at most 16 per tensor), exits 1 naming the file on any error

    from read_ckpt import read_checkpoint, decode
    ck = read_checkpoint("run/ckpt-3")                  # checks everything, raises FormatError
    kernel = decode(ck.entries["model/hidden/kernel"])  # a numpy array in its logical shape

XXH3-64 comes from the xxHash C library (libxxhash0 on Debian) through ctypes: Python's standard
library has none. The tests run this on the fixtures of both format versions and on a file the
library writes (tests/read_ckpt.cpp).
"""
import ctypes
import ctypes.util
import struct
import sys
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"\x89CKPT\r\n\x1a"
KINDS = {0: "tensor", 1: "sparse", 2: "serialized", 3: "text", 4: "sequence", 5: "mapping"}
# dtype value: (name, numpy dtype of the stored element); bfloat16 is read as raw uint16.
DTYPES = {
    0: ("bytes", "u1"), 1: ("bool", "u1"), 2: ("int8", "i1"), 3: ("int16", "<i2"), 4: ("int32", "<i4"),
    5: ("int64", "<i8"), 6: ("uint8", "u1"), 7: ("uint16", "<u2"), 8: ("uint32", "<u4"), 9: ("uint64", "<u8"),
    10: ("float16", "<f2"), 11: ("bfloat16", "<u2"), 12: ("float32", "<f4"), 13: ("float64", "<f8"),
    14: ("complex64", "<c8"), 15: ("complex128", "<c16"),
}
NO_STEP = -(2**63)


class FormatError(Exception):
    """The file is not a sound ckpt checkpoint; the message names the file and, where there is
    one, the entry."""


def _load_xxhash():
    for name in ("libxxhash.so.0", ctypes.util.find_library("xxhash")):
        if name:
            try:
                lib = ctypes.CDLL(name)
                lib.XXH3_64bits.restype = ctypes.c_uint64
                lib.XXH3_64bits.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
                return lib
            except OSError:
                pass
    raise ImportError("read_ckpt.py needs the xxHash library (Debian: libxxhash0)")


_xxh = _load_xxhash()


def xxh3(b):
    """XXH3-64 with seed 0, as every checksum of the format."""
    b = bytes(b)
    return _xxh.XXH3_64bits(b, len(b))


def align64(n):
    return (n + 63) // 64 * 64


@dataclass
class Entry:
    path: str
    kind: int
    dtype: int
    column_major: bool
    shape: tuple
    offset: int
    length: int
    checksum: int
    block: bytes = b""


@dataclass
class Checkpoint:
    version: int
    save_counter: int
    wall_time_ns: int
    step: object  # int, or None when the save gave none
    chunk_size: int  # 0 for version 1
    metrics: dict = field(default_factory=dict)
    strings: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)  # path -> Entry, in the file's order


class _Index:
    """Bounds-checked reads from the index bytes."""

    def __init__(self, data, where):
        self.data, self.pos, self.where = data, 0, where

    def take(self, n, what):
        if n > len(self.data) - self.pos:
            raise FormatError(f"{self.where}: index ends inside {what}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def string(self, what):
        (n,) = self.u("<I", what)
        return self.take(n, what)


def read_checkpoint(path):
    """Reads and checks a whole checkpoint file: header, index, layout, padding, every checksum."""
    with open(path, "rb") as f:
        data = f.read()
    where = str(path)
    if len(data) < 128 or data[:8] != MAGIC:
        raise FormatError(f"{where}: not a ckpt checkpoint (no magic bytes)")
    if xxh3(data[:120]) != struct.unpack_from("<Q", data, 120)[0]:
        raise FormatError(f"{where}: header checksum mismatch")
    version, bom, file_size, index_offset, index_length, index_sum, entry_count, counter, wall, step = \
        struct.unpack_from("<IIQQQQQQqq", data, 8)
    if version not in (1, 2):
        raise FormatError(f"{where}: format version {version}, expected 1 or 2")
    if bom != 0x01020304:
        raise FormatError(f"{where}: written on a machine of the other byte order")
    chunk = struct.unpack_from("<Q", data, 80)[0] if version == 2 else 0
    reserved = data[88:120] if version == 2 else data[80:120]
    if version == 2 and not (64 <= chunk <= 2**30 and chunk & (chunk - 1) == 0):
        raise FormatError(f"{where}: chunk_size {chunk} is not a power of two in [64, 2^30]")
    if any(reserved):
        raise FormatError(f"{where}: reserved header bytes are not zero")
    if file_size != len(data):
        raise FormatError(f"{where}: header says {file_size} bytes, the file has {len(data)}")
    if index_offset < 128 or index_offset % 64 or index_offset + index_length != file_size:
        raise FormatError(f"{where}: index at {index_offset} (+{index_length}) is not where the layout puts it")
    index = data[index_offset:]
    if xxh3(index) != index_sum:
        raise FormatError(f"{where}: index checksum mismatch")
    if entry_count > len(index) // 33:  # a record takes at least 33 bytes
        raise FormatError(f"{where}: {entry_count} entries cannot fit in an index of {len(index)} bytes")

    ck = Checkpoint(version, counter, wall, None if step == NO_STEP else step, chunk)
    r = _Index(index, where)
    expected_offset = 128
    for _ in range(entry_count):
        raw = r.string("an entry path")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = raw.decode("utf-8", "backslashreplace")
        here = f"{where}: entry '{name}'"
        kind, dtype, flags, rank = r.u("<4B", "an entry record")
        if kind not in KINDS or dtype not in DTYPES or flags & ~1 or rank > 8:
            raise FormatError(f"{here}: kind {kind}, dtype {dtype}, flags {flags}, rank {rank} not valid")
        shape = r.u(f"<{rank}Q", "a shape")
        offset, length, checksum = r.u("<QQQ", "an entry record")
        if offset != expected_offset or offset + length > index_offset:
            raise FormatError(f"{here}: block at {offset} (+{length}), expected at {expected_offset}")
        expected_offset = align64(offset + length)
        block = data[offset:offset + length]
        if any(data[offset + length:expected_offset]):
            raise FormatError(f"{here}: padding after the block is not zero")
        count = -(-length // chunk) if chunk and length > chunk else 0
        if count:  # a checksum per chunk; the block's checksum is the hash of that table
            table = r.take(8 * count, "a chunk table")
            if xxh3(table) != checksum:
                raise FormatError(f"{here}: chunk table checksum mismatch")
            for k, s in enumerate(struct.unpack(f"<{count}Q", table)):
                if xxh3(block[k * chunk:(k + 1) * chunk]) != s:
                    raise FormatError(f"{here}: checksum mismatch in chunk {k}")
        elif xxh3(block) != checksum:
            raise FormatError(f"{here}: checksum mismatch")
        _check_shape(here, kind, dtype, shape, length)
        if name in ck.entries:
            raise FormatError(f"{here}: path listed twice")
        ck.entries[name] = Entry(name, kind, dtype, bool(flags & 1), shape, offset, length, checksum, block)
    if expected_offset != index_offset:
        raise FormatError(f"{where}: the last block ends at {expected_offset}, the index starts at {index_offset}")
    (n,) = r.u("<I", "the metric count")
    for _ in range(n):
        key = r.string("a metric name").decode("utf-8", "backslashreplace")
        (ck.metrics[key],) = r.u("<d", "a metric value")
    (n,) = r.u("<I", "the string count")
    for _ in range(n):
        key = r.string("a string key").decode("utf-8", "backslashreplace")
        ck.strings[key] = r.string("a string value").decode("utf-8", "backslashreplace")
    if r.pos != len(index):
        raise FormatError(f"{where}: {len(index) - r.pos} bytes after the metadata")
    return ck


def _check_shape(here, kind, dtype, shape, length):
    if kind == 0:
        n = 1
        for d in shape:
            n *= d
        want = n * np.dtype(DTYPES[dtype][1]).itemsize
    elif kind in (2, 3):
        want = shape[0] if len(shape) == 1 else -1
    elif kind == 4:
        want = 0 if len(shape) == 1 else -1
    elif kind == 5:
        want = length if len(shape) == 1 and shape[0] <= length // 4 else -1
    else:  # sparse: checked when decoded
        want = length if len(shape) == 2 else -1
    if want != length:
        raise FormatError(f"{here}: shape {list(shape)} does not fit a {KINDS[kind]} block of {length} bytes")


def decode(e):
    """An entry's value: a tensor as a numpy array of its logical shape (bfloat16 widened to
    float32), a sparse matrix as a dict of its compressed arrays, text as str, serialized bytes as
    bytes (a std::string as str), a sequence's element count, a mapping's keys."""
    if e.kind == 0:
        a = np.frombuffer(e.block, DTYPES[e.dtype][1])
        if e.dtype == 1:
            a = a.astype(bool)
        elif e.dtype == 11:  # bfloat16: the high half of a float32
            a = (a.astype("<u4") << 16).view("<f4")
        return a.reshape(e.shape, order="F" if e.column_major and len(e.shape) > 1 else "C")
    if e.kind == 1:
        rows, cols = e.shape
        (nnz,) = struct.unpack_from("<Q", e.block, 0)
        outer = cols if e.column_major else rows
        starts = np.frombuffer(e.block, "<i8", outer + 1, 8)
        inner = np.frombuffer(e.block, "<i8", nnz, 8 + 8 * (outer + 1))
        values = np.frombuffer(e.block, DTYPES[e.dtype][1], nnz, 8 + 8 * (outer + 1 + nnz))
        return dict(format="csc" if e.column_major else "csr", shape=(rows, cols), starts=starts, inner=inner,
                    values=values)
    if e.kind == 2:
        if len(e.block) >= 8 and struct.unpack_from("<Q", e.block)[0] == len(e.block) - 8:
            return e.block[8:].decode("utf-8", "backslashreplace")  # cereal's std::string
        return e.block
    if e.kind == 3:
        return e.block.decode("ascii")
    if e.kind == 4:
        return e.shape[0]
    keys, pos = [], 0
    for _ in range(e.shape[0]):
        (n,) = struct.unpack_from("<I", e.block, pos)
        keys.append(e.block[pos + 4:pos + 4 + n].decode("utf-8", "backslashreplace"))
        pos += 4 + n
    return keys


def _number(v):
    if isinstance(v, (complex, np.complexfloating)):
        return f"({_number(v.real)},{_number(v.imag)})"
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "%.17g" % float(v)


def describe(e, most=16):
    """One line: path, kind, dtype, shape, and the value (tensors in C order, at most `most`)."""
    head = f"{e.path}: {KINDS[e.kind]} {DTYPES[e.dtype][0]} {list(e.shape)}"
    v = decode(e)
    if e.kind == 0:
        flat = v.reshape(-1, order="C")
        text = " ".join(_number(x) for x in flat[:most])
        return f"{head} = {text}" + (f" ... ({flat.size} elements)" if flat.size > most else "")
    if e.kind == 1:
        rows = np.repeat(np.arange(len(v["starts"]) - 1), np.diff(v["starts"]))
        pairs = zip(rows, v["inner"]) if v["format"] == "csr" else zip(v["inner"], rows)
        return head + " = " + " ".join(f"({i},{j})={_number(x)}" for (i, j), x in zip(pairs, v["values"]))
    if e.kind == 3:
        return f"{head} = {len(v.split())} numbers"
    return f"{head} = {v!r}"


def main(files):
    status = 0
    for path in files:
        try:
            ck = read_checkpoint(path)
        except (FormatError, OSError) as e:
            print(f"read_ckpt: {e}")
            status = 1
            continue
        print(f"{path}: version {ck.version}, save counter {ck.save_counter}, step {ck.step}, "
              f"{len(ck.entries)} entries, every checksum ok")
        for k, v in ck.metrics.items():
            print(f"metric {k} = {_number(v)}")
        for k, v in ck.strings.items():
            print(f"string {k} = {v!r}")
        for e in ck.entries.values():
            print(describe(e))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
