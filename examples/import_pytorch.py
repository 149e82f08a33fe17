#!/usr/bin/env python3
"""The PyTorch half of examples/import_pytorch.cpp: PyTorch trains a small MLP and hands its weights
to C++ as safetensors; C++ fine-tunes them and hands them back; PyTorch loads them and checks that
its outputs are the C++ program's.

    python3 import_pytorch.py train DIR    # DIR/pytorch.safetensors, DIR/inputs.npy, DIR/targets.npy
    import_pytorch --dir DIR/ckpts --work DIR
                                           # DIR/finetuned.safetensors, DIR/cpp_outputs.safetensors
    python3 import_pytorch.py check DIR    # loads finetuned.safetensors into the model, compares outputs

Debian has no safetensors package, so the weights go through numpy and tests/python/write_safetensors.py,
a small writer that follows the published format (with the `safetensors` package:
safetensors.torch.save_file(model.state_dict(), path) and load_file(path) do the same).
"""
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from write_safetensors import read_safetensors, write_safetensors  # noqa: E402


class MLP(torch.nn.Module):
    """state_dict names: fc1.weight [16, 4], fc1.bias [16], fc2.weight [3, 16], fc2.bias [3]."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 16)
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def train(work):
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    w = torch.randn(4, 3)
    targets = torch.tanh(x @ w)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), targets)
        loss.backward()
        opt.step()
    print(f"PyTorch: trained, loss {loss.item():.5f}")
    state = {name: t.detach().numpy() for name, t in model.state_dict().items()}
    write_safetensors(os.path.join(work, "pytorch.safetensors"), state, metadata={"format": "pt"})
    np.save(os.path.join(work, "inputs.npy"), x.numpy())
    # The C++ side fine-tunes toward slightly different targets.
    np.save(os.path.join(work, "targets.npy"), (targets * 0.9 + 0.05).numpy())


def check(work):
    tensors, _ = read_safetensors(os.path.join(work, "finetuned.safetensors"))
    model = MLP()
    model.load_state_dict({name: torch.from_numpy(a) for name, a in tensors.items()})  # strict: every name
    before, _ = read_safetensors(os.path.join(work, "pytorch.safetensors"))
    changed = max(float(np.abs(tensors[n] - before[n]).max()) for n in before)
    x = torch.from_numpy(np.load(os.path.join(work, "inputs.npy")))
    with torch.no_grad():
        ours = model(x).numpy()
    theirs = read_safetensors(os.path.join(work, "cpp_outputs.safetensors"))[0]["outputs"]
    worst = float(np.abs(ours - theirs).max())
    print(f"PyTorch: fine-tuned weights moved by up to {changed:.5f}; "
          f"outputs differ from C++ by at most {worst:.2e} over {ours.size} values")
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-5, atol=1e-5):
        sys.exit("PyTorch and C++ outputs differ")
    if changed == 0:
        sys.exit("the C++ fine-tuning changed nothing")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("train", "check"):
        sys.exit(__doc__)
    os.makedirs(sys.argv[2], exist_ok=True)
    (train if sys.argv[1] == "train" else check)(sys.argv[2])
