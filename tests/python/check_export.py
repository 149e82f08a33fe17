#!/usr/bin/env python3
"""Checks the `ckpt export` outputs against expected values, with numpy and by the published
safetensors layout (no safetensors package): python3 check_export.py EXPECTED NPZ SAFETENSORS

EXPECTED has one tensor per line: name|numpy dtype|shape (comma-separated)|values in C order."""
import json
import struct
import sys

import numpy as np


def expected_tensors(path):
    for line in open(path, encoding="utf-8"):
        name, dtype, shape, values = line.rstrip("\n").split("|")
        shape = tuple(int(d) for d in shape.split(",") if d)
        parsed = [complex(v) if "j" in v else float(v) for v in values.split()]
        yield name, np.dtype(dtype), shape, np.array(parsed).reshape(shape)


def main(expected_path, npz_path, safetensors_path):
    failures = []
    npz = np.load(npz_path)
    with open(safetensors_path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    if "__metadata__" not in header or "ckpt.save_counter" not in header["__metadata__"]:
        failures.append("safetensors: no ckpt metadata")
    st_dtypes = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "BOOL": "|b1", "I8": "|i1", "U8": "|u1", "I32": "<i4"}
    checked = 0
    for name, dtype, shape, values in expected_tensors(expected_path):
        got = npz[name]
        if got.dtype != dtype or got.shape != shape or not np.array_equal(got.astype(values.dtype), values):
            failures.append(f"npz {name}: {got.dtype} {got.shape} {got.ravel()[:6]} vs {dtype} {shape} {values.ravel()[:6]}")
        checked += 1
        if dtype.kind == "c":
            if name in header:
                failures.append(f"safetensors {name}: complex tensors cannot be represented, but it is there")
            continue
        entry = header.get(name)
        if entry is None:
            failures.append(f"safetensors {name}: missing")
            continue
        begin, end = entry["data_offsets"]
        got = np.frombuffer(data[begin:end], dtype=st_dtypes[entry["dtype"]]).reshape(entry["shape"])
        if tuple(entry["shape"]) != shape or not np.array_equal(got.astype(values.dtype), values):
            failures.append(f"safetensors {name}: {got.ravel()[:6]} vs {values.ravel()[:6]}")
        checked += 1
    for f in failures:
        print(f)
    print(f"checked {checked} tensors, {len(failures)} failures")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
