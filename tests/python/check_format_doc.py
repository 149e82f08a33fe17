#!/usr/bin/env python3
"""Runs the Python reader sketch of docs/format.md, exactly as printed there, on checkpoint files:
    python3 check_format_doc.py FORMAT_MD FIXTURE...
Each fixture is tests/data/v*/fixture.ckpt (values in tests/data/README.md): every checksum is
checked by the sketch, then a few values here. Prints the error and exits 1 on any failure."""
import re
import sys

import numpy as np


def load_sketch(format_md):
    text = open(format_md, encoding="utf-8").read()
    code = re.search(r"## A reader in Python.*?```python\n(.*?)```", text, re.S).group(1)
    definitions = code.split("\nentries, meta = read_checkpoint(")[0]  # the usage lines need a real file
    scope = {}
    exec(compile(definitions, format_md + " (python sketch)", "exec"), scope)
    return scope["read_checkpoint"]


def check_fixture(read_checkpoint, path):
    entries, meta = read_checkpoint(path)
    assert meta["step"] == 4200, meta
    big = entries["big"]
    assert big["kind"] == 0 and big["dtype"] == 12 and big["shape"] == (400000,), big["shape"]
    i = np.arange(400000)
    want = ((i % 1000) * 0.5 + i // 1000).astype("<f4")
    assert np.array_equal(np.frombuffer(big["block"], "<f4"), want), "big"
    f32 = entries["f32"]
    kernel = np.frombuffer(f32["block"], "<f4").reshape(f32["shape"], order="F" if f32["column_major"] else "C")
    assert kernel.shape == (3, 4) and kernel[1, 2] == 0.25 * (2 * 3 + 1) - 1, kernel
    assert entries["note"]["kind"] in (2, 3)


def main(format_md, *files):
    read_checkpoint = load_sketch(format_md)
    for path in files:
        try:
            check_fixture(read_checkpoint, path)
        except Exception as e:  # noqa: BLE001 - any failure is reported with its file
            print(f"{path}: {type(e).__name__}: {e}")
            return 1
        print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
