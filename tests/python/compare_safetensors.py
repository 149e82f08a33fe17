#!/usr/bin/env python3
"""python3 compare_safetensors.py [--layout] A B: exit 0 when the two safetensors files hold the same
tensors, name for name, with the same dtypes, shapes and bytes (the metadata aside); with --layout,
also at the same data_offsets. Else each difference on a line and exit 1. Read with
write_safetensors.py's reader (offsets checked)."""
import json
import struct
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from write_safetensors import read_safetensors  # noqa: E402


def described(value):
    dtype, array = value if isinstance(value, tuple) else (None, value)
    return dtype or array.dtype.str, array.shape, array.tobytes()


def offsets(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return {k: v["data_offsets"] for k, v in header.items() if k != "__metadata__"}


def main(a, b, layout=False):
    ta, _ = read_safetensors(a)
    tb, _ = read_safetensors(b)
    problems = [f"only in {a}: {n}" for n in sorted(set(ta) - set(tb))]
    problems += [f"only in {b}: {n}" for n in sorted(set(tb) - set(ta))]
    for name in sorted(set(ta) & set(tb)):
        da, sa, ba = described(ta[name])
        db, sb, bb = described(tb[name])
        if (da, sa) != (db, sb):
            problems.append(f"{name}: {da} {list(sa)} vs {db} {list(sb)}")
        elif ba != bb:
            problems.append(f"{name}: bytes differ")
    if layout and not problems:
        oa, ob = offsets(a), offsets(b)
        problems += [f"{n}: data_offsets {oa[n]} vs {ob[n]}" for n in sorted(oa) if oa[n] != ob[n]]
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"same {len(ta)} tensors")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--layout"]
    if len(args) != 2:
        sys.exit(__doc__)
    main(args[0], args[1], layout="--layout" in sys.argv)
