"""Compares the global tensors in an npz that `ckpt export` assembled from a sharded checkpoint with
the row-major dumps the restore scenario of tests/mpi/sharded.cpp wrote, bit for bit.
Usage: check_export.py EXPORT.npz STEM   (reads STEM.embedding.f32 and STEM.columns.f64)"""
import sys

import numpy as np

npz, stem = sys.argv[1], sys.argv[2]
with np.load(npz) as z:
    for name, suffix, dtype in (("embedding", "f32", "<f4"), ("columns", "f64", "<f8")):
        got = z[name]
        want = np.fromfile(f"{stem}.{name}.{suffix}", dtype=dtype)
        assert got.dtype == np.dtype(dtype), f"{name}: exported dtype {got.dtype}, expected {dtype}"
        assert got.ndim == 2 and got.size == want.size, f"{name}: exported shape {got.shape}, {want.size} values expected"
        assert np.ascontiguousarray(got).tobytes() == want.tobytes(), f"{name}: exported values differ"
        print(f"{name}: {got.shape} equals the global tensor bit for bit")
