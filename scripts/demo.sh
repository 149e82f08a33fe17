#!/usr/bin/env bash
# The main demo: installs what is missing, builds the flagship example, and shows a training run
# interrupted by a signal and resumed to the same final state as an uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DCKPT_BUILD_TESTS=OFF -DCKPT_BUILD_TOOLS=ON >/dev/null
cmake --build build/demo -j"$(nproc)" --target train_resume ckpt_tool >/dev/null
exec bash scripts/demo-train-resume.sh build/demo/examples/train_resume build/demo/tools/ckpt/ckpt
