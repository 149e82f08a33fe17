#!/usr/bin/env python3
"""Opens `ckpt export` outputs with the reference readers and prints what they see, for tests to
match: python3 export_facts.py FILE...  (.npz through numpy.load and zipfile.extractall, as unzip
would; .json through json.load, printing "json N entries"; anything else as safetensors, parsed
by its published layout).

Lines: "npz NAME DTYPE SHAPE", "safetensors NAME DTYPE SHAPE", "metadata KEY VALUE" (JSON-quoted
names and values), and for every tensor whose name starts with "pattern": "pattern NAME ok|BAD",
ok when its values in C order are 0, 1, 2, ... (how the tests fill large tensors)."""
import json
import struct
import sys
import tempfile
import zipfile

import numpy as np


def pattern(name, values):
    if name.startswith("pattern"):
        ok = np.array_equal(values.astype(np.float64).ravel(order="C"), np.arange(values.size, dtype=np.float64))
        print("pattern", json.dumps(name), "ok" if ok else "BAD")


def npz(path):
    with tempfile.TemporaryDirectory() as d, zipfile.ZipFile(path) as z:
        z.extractall(d)
    arrays = np.load(path)
    for name in arrays.files:
        a = arrays[name]
        print("npz", json.dumps(name), a.dtype.str if a.dtype.names is None else str(a.dtype.descr).replace(" ", ""),
              ",".join(map(str, a.shape)))
        pattern(name, a)


def safetensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    numpy_dtype = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "|u1", "I8": "|i1", "I16": "<i2", "F16": "<f2",
                   "BOOL": "|b1"}
    for key, value in header.get("__metadata__", {}).items():
        print("metadata", json.dumps(key), json.dumps(value))
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        print("safetensors", json.dumps(name), entry["dtype"], ",".join(map(str, entry["shape"])))
        begin, end = entry["data_offsets"]
        if entry["dtype"] in numpy_dtype:
            pattern(name, np.frombuffer(data[begin:end], dtype=numpy_dtype[entry["dtype"]]).reshape(entry["shape"]))


def json_file(path):
    with open(path, encoding="utf-8") as f:
        print("json", len(json.load(f)["entries"]), "entries")


for file in sys.argv[1:]:
    (npz if file.endswith(".npz") else json_file if file.endswith(".json") else safetensors)(file)
