#!/usr/bin/env python3
"""Writes foreign weight files for the tests, with the reference writers where Debian has them:
numpy writes the npz and npy files, write_safetensors.py (the published format, exactly) the
safetensors ones.

    python3 foreign_fixtures.py OUTDIR

OUTDIR/
  all.safetensors              every safetensors dtype, ranks 0 to 4, empty tensors; __metadata__ {"format": "pt"}
  weights.npz                  np.savez (stored), C order: the tensors numpy has a dtype for (no BF16)
  weights_compressed.npz       np.savez_compressed (deflate), C order
  weights_fortran.npz          np.savez, every array Fortran order
  weights_fortran_compressed.npz   np.savez_compressed, Fortran order
  single.npy                   np.save of "layers.0.weight"
  sharded/model-0000{1,2,3}-of-00003.safetensors + sharded/model.safetensors.index.json
                               an HF-sharded model: the tensors of all.safetensors spread over three shards
  big.safetensors              only with --big MIB: one F32 tensor "big.weight" of MIB MiB, [MIB*1024, 256]

Names are dotted as in a PyTorch state_dict ("layers.0.weight"). Element i (C order) of every tensor is
value(i) below, so a C++ test can check any tensor without a table:
  floating (F16, BF16, F32, F64): (i % 17) * 0.25 - 2      (exact in every float type)
  signed integers:                (i % 17) - 8
  unsigned integers:              i % 17
  BOOL:                           i % 3 == 0
"""
import json
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from write_safetensors import write_safetensors  # noqa: E402

# name -> (safetensors dtype, shape)
TENSORS = {
    "layers.0.weight": ("F32", (4, 3)),
    "layers.0.bias": ("F32", (4,)),
    "layers.1.weight": ("F64", (2, 3, 4)),
    "layers.1.scale": ("F16", (5,)),
    "layers.1.gate": ("BF16", (3, 2)),
    "embed.table": ("F32", (2, 1, 3, 2)),
    "counts.i8": ("I8", (7,)),
    "counts.i16": ("I16", (2, 2)),
    "counts.i32": ("I32", (3,)),
    "counts.i64": ("I64", ()),
    "counts.u8": ("U8", (6,)),
    "counts.u16": ("U16", (2,)),
    "counts.u32": ("U32", (1, 2)),
    "counts.u64": ("U64", (3,)),
    "mask": ("BOOL", (2, 3)),
    "step": ("I64", ()),
    "empty.rows": ("F32", (0, 3)),
    "empty.vector": ("I32", (0,)),
}
NUMPY = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16, "I32": np.int32,
         "I64": np.int64, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}


def value(dtype, shape):
    """The tensor's values (see the top): a numpy array, or ("BF16", its uint16 bits)."""
    i = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    if dtype == "BOOL":
        return (i % 3 == 0).reshape(shape)
    if dtype in ("F16", "F32", "F64", "BF16"):
        floats = ((i % 17) * 0.25 - 2).reshape(shape)
        if dtype == "BF16":  # the high half of a float32's bits; exact for these values
            return "BF16", (floats.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        return floats.astype(NUMPY[dtype])
    if dtype.startswith("I"):
        return ((i % 17) - 8).reshape(shape).astype(NUMPY[dtype])
    return (i % 17).reshape(shape).astype(NUMPY[dtype])


def tensors():
    return {name: value(dtype, shape) for name, (dtype, shape) in TENSORS.items()}


def numpy_tensors(fortran=False):
    """The tensors numpy has a dtype for, in C or Fortran order."""
    out = {}
    for name, v in tensors().items():
        if isinstance(v, tuple):
            continue
        out[name] = np.asfortranarray(v) if fortran and v.ndim > 1 else v
    return out


def write_sharded(directory, all_tensors):
    """Three shards in name order, and the index HF's save_pretrained writes."""
    os.makedirs(directory, exist_ok=True)
    names = sorted(all_tensors)
    shards = [names[0::3], names[1::3], names[2::3]]
    weight_map, total = {}, 0
    for k, part in enumerate(shards, start=1):
        file = f"model-{k:05d}-of-00003.safetensors"
        write_safetensors(os.path.join(directory, file), {n: all_tensors[n] for n in part}, {"format": "pt"})
        for n in part:
            weight_map[n] = file
            v = all_tensors[n]
            total += (v[1] if isinstance(v, tuple) else v).nbytes
    with open(os.path.join(directory, "model.safetensors.index.json"), "w", encoding="utf-8") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)


def write_big(path, mib):
    """One F32 tensor of `mib` MiB, written a row block at a time (this script stays small too)."""
    rows, cols = mib * 1024, 256
    header = json.dumps({"big.weight": {"dtype": "F32", "shape": [rows, cols],
                                        "data_offsets": [0, rows * cols * 4]}}, separators=(",", ":")).encode()
    header += b" " * ((8 - len(header) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        block = 1024
        for first in range(0, rows, block):
            i = np.arange(first * cols, (first + block) * cols, dtype=np.int64)
            f.write(((i % 17) * 0.25 - 2).astype("<f4").tobytes())


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--big"):
        sys.exit(__doc__)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    all_tensors = tensors()
    write_safetensors(os.path.join(out, "all.safetensors"), all_tensors, {"format": "pt"})
    np.savez(os.path.join(out, "weights.npz"), **numpy_tensors())
    np.savez_compressed(os.path.join(out, "weights_compressed.npz"), **numpy_tensors())
    np.savez(os.path.join(out, "weights_fortran.npz"), **numpy_tensors(fortran=True))
    np.savez_compressed(os.path.join(out, "weights_fortran_compressed.npz"), **numpy_tensors(fortran=True))
    np.save(os.path.join(out, "single.npy"), all_tensors["layers.0.weight"])
    write_sharded(os.path.join(out, "sharded"), all_tensors)
    if len(argv) == 4:
        write_big(os.path.join(out, "big.safetensors"), int(argv[3]))


if __name__ == "__main__":
    main(sys.argv)
