#!/usr/bin/env python3
"""python3 compare_safetensors.py A B: exit 0 when the two safetensors files hold the same tensors,
name for name, with the same dtypes, shapes and bytes (the metadata and the layout aside); else
each difference on a line and exit 1. Read with write_safetensors.py's reader (offsets checked)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from write_safetensors import read_safetensors  # noqa: E402


def described(value):
    dtype, array = value if isinstance(value, tuple) else (None, value)
    return dtype or array.dtype.str, array.shape, array.tobytes()


def main(a, b):
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
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"same {len(ta)} tensors")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
