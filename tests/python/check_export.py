#!/usr/bin/env python3
"""Checks the `ckpt export` outputs against expected values, with numpy and with PyTorch (Debian's
python3-numpy and python3-torch), and the safetensors file by its published layout (no
safetensors package): python3 check_export.py EXPECTED NPZ SAFETENSORS

EXPECTED has one tensor per line: name|numpy dtype|shape (comma-separated)|values in C order.
The dtype "bf16" stands for bfloat16, exported to npz as [('bfloat16', '<u2')].
Also checked: every safetensors tensor starts aligned to its element size, in the reference
writer's order (element size descending, then name), and the npz extracts as files (zipfile)."""
import json
import os
import struct
import sys
import tempfile
import zipfile

import numpy as np
import torch

BF16 = np.dtype([("bfloat16", "<u2")])
ST_NUMPY = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "|i1",
            "U8": "|u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "|b1"}
ST_TORCH = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
            "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def expected_tensors(path):
    for line in open(path, encoding="utf-8"):
        name, dtype, shape, values = line.rstrip("\n").split("|")
        shape = tuple(int(d) for d in shape.split(",") if d)
        parsed = [complex(v) if "j" in v else float(v) for v in values.split()]
        yield name, dtype, shape, np.array(parsed).reshape(shape)


def bf16_to_float32(bits):
    """numpy has no bfloat16: its bits are the high half of a float32's."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    return header, data


def check_layout(header, failures):
    """Every tensor aligned to its element size, laid out as the reference writer does."""
    tensors = sorted(((v["data_offsets"], k, v) for k, v in header.items() if k != "__metadata__"), key=lambda t: t[0])
    order = [k for _, k, _ in tensors]
    size = lambda v: np.dtype(ST_NUMPY[v["dtype"]]).itemsize
    reference = sorted(order, key=lambda k: (-size(header[k]), k))
    if order != reference:
        failures.append(f"safetensors order {order} is not the reference writer's {reference}")
    end = 0
    for (begin, stop), name, v in tensors:
        if begin != end:
            failures.append(f"safetensors {name}: starts at {begin}, the previous tensor ends at {end}")
        if begin % size(v):
            failures.append(f"safetensors {name}: offset {begin} not aligned to {size(v)} bytes")
        end = stop


def main(expected_path, npz_path, safetensors_path):
    failures = []
    npz = np.load(npz_path)
    with tempfile.TemporaryDirectory() as d, zipfile.ZipFile(npz_path) as z:
        if z.testzip() is not None:
            failures.append("npz: a member's CRC is wrong")
        z.extractall(d)  # as unzip would: every member name must make a file name
    header, data = read_safetensors(safetensors_path)
    if "__metadata__" not in header or "ckpt.save_counter" not in header["__metadata__"]:
        failures.append("safetensors: no ckpt metadata")
    check_layout(header, failures)
    checked = 0
    for name, dtype, shape, values in expected_tensors(expected_path):
        got = npz[name]
        if dtype == "bf16":
            ok = got.dtype == BF16 and got.shape == shape and np.array_equal(bf16_to_float32(got.view("<u2")), values)
            # The PyTorch recipe of the README.
            as_torch = torch.from_numpy(got.view(np.int16)).view(torch.bfloat16)
            ok = ok and torch.equal(as_torch.to(torch.float64), torch.from_numpy(values))
        else:
            ok = got.dtype == np.dtype(dtype) and got.shape == shape and np.array_equal(got.astype(values.dtype), values)
            as_torch = torch.from_numpy(got)
            ok = ok and torch.equal(as_torch.to(torch.from_numpy(values).dtype), torch.from_numpy(values))
        if not ok:
            failures.append(f"npz {name}: {got.dtype} {got.shape} {got.ravel()[:6]} vs {dtype} {shape} {values.ravel()[:6]}")
        checked += 1
        if dtype.startswith("<c"):
            if name in header:
                failures.append(f"safetensors {name}: complex tensors cannot be represented, but it is there")
            continue
        entry = header.get(name)
        if entry is None:
            failures.append(f"safetensors {name}: missing")
            continue
        begin, end = entry["data_offsets"]
        got = np.frombuffer(data[begin:end], dtype=ST_NUMPY[entry["dtype"]]).reshape(entry["shape"])
        if entry["dtype"] == "BF16":
            got = bf16_to_float32(got)
        as_torch = torch.frombuffer(bytearray(data[begin:end]), dtype=ST_TORCH[entry["dtype"]]).reshape(entry["shape"])
        reference = torch.from_numpy(values)
        if (tuple(entry["shape"]) != shape or not np.array_equal(got.astype(values.dtype), values)
                or not torch.equal(as_torch.to(reference.dtype), reference)):
            failures.append(f"safetensors {name}: {got.ravel()[:6]} vs {values.ravel()[:6]}")
        checked += 1
    for f in failures:
        print(f)
    print(f"checked {checked} tensors, {len(failures)} failures")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
