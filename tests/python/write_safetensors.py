#!/usr/bin/env python3
"""A small safetensors writer and reader that follow the published format exactly
(https://huggingface.co/docs/safetensors: 8-byte little-endian header length, a JSON header mapping
each name to {"dtype", "shape", "data_offsets": [begin, end]} relative to the data section, an
optional "__metadata__" of string to string, the header padded with spaces to a multiple of 8, then
the tensors' bytes, row-major little-endian). Debian has no safetensors package; this stands in for
the reference writer in the tests and examples. Tensors are laid out as the reference writer lays
them out: by element size, largest first, then by name.

bfloat16 has no numpy dtype: pass ("BF16", uint16 array of the bits) for a tensor of that dtype.

    write_safetensors(path, {"fc1.weight": np.ones((4, 3), np.float32)}, metadata={"format": "pt"})
    tensors, metadata = read_safetensors(path)   # {name: numpy array or ("BF16", uint16 array)}
"""
import json
import os
import struct
import sys

import numpy as np

# safetensors dtype <-> numpy dtype (little-endian). BF16 is carried as its uint16 bits.
DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "I32": "<i4", "U32": "<u4",
          "I64": "<i8", "U64": "<u8", "F16": "<f2", "BF16": "<u2", "F32": "<f4", "F64": "<f8"}
FROM_NUMPY = {np.dtype(v): k for k, v in DTYPES.items() if k not in ("BF16",)}


def _as_dtype_and_array(value):
    if isinstance(value, tuple):
        dtype, array = value
        array = np.asarray(array)
        if dtype not in DTYPES or np.dtype(DTYPES[dtype]).itemsize != array.dtype.itemsize:
            raise ValueError(f"{dtype} cannot be written from a {array.dtype} array")
        return dtype, np.array(array, dtype=DTYPES[dtype], order="C")
    array = np.asarray(value)
    little = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if little not in FROM_NUMPY:
        raise ValueError(f"safetensors has no dtype for numpy {array.dtype}")
    return FROM_NUMPY[little], np.array(array, dtype=little, order="C")


def header_and_order(tensors, metadata=None):
    """The header bytes (padded) and the names in data order."""
    prepared = {name: _as_dtype_and_array(value) for name, value in tensors.items()}
    order = sorted(prepared, key=lambda n: (-prepared[n][1].dtype.itemsize, n))
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for name in order:
        dtype, array = prepared[name]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return text, order, prepared


def write_safetensors(path, tensors, metadata=None):
    """Writes `tensors` ({name: array or ("BF16", uint16 bits)}) to `path`, atomically."""
    text, order, prepared = header_and_order(tensors, metadata)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(prepared[name][1].tobytes(order="C"))
    os.replace(tmp, path)


def read_safetensors(path):
    """({name: numpy array, or ("BF16", uint16 array)}, metadata or {}), every offset checked."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (length,) = struct.unpack("<Q", data[:8])
    if 8 + length > len(data):
        raise ValueError(f"{path}: header length {length} beyond the file's {len(data)} bytes")
    header = json.loads(data[8:8 + length].decode("utf-8"))
    body = data[8 + length:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    spans = []
    for name, info in header.items():
        dtype, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
        np_dtype = np.dtype(DTYPES[dtype])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= len(body)) or end - begin != count * np_dtype.itemsize:
            raise ValueError(f"{path}: {name}: data_offsets {begin}, {end} do not fit {dtype} {list(shape)}")
        spans.append((begin, end, name))
        array = np.frombuffer(body[begin:end], dtype=np_dtype).reshape(shape).copy()
        tensors[name] = (dtype, array) if dtype == "BF16" else array
    spans.sort()
    for (_, end, a), (begin, _, b) in zip(spans, spans[1:]):
        if begin < end:
            raise ValueError(f"{path}: tensors {a} and {b} overlap")
    return tensors, metadata


if __name__ == "__main__":
    # python3 write_safetensors.py FILE: prints each tensor's name, dtype, shape (a quick look).
    tensors, metadata = read_safetensors(sys.argv[1])
    for name, value in sorted(tensors.items()):
        dtype, array = value if isinstance(value, tuple) else (None, value)
        print(name, dtype or FROM_NUMPY[array.dtype], list(array.shape))
    if metadata:
        print("__metadata__", json.dumps(metadata, sort_keys=True))
