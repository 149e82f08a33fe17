#!/usr/bin/env bash
# Installs, from Debian's packages, whatever of ckpt's build and test dependencies is missing.
# Idempotent and quiet when everything is there. Works as root (or through sudo).
set -euo pipefail

packages=(build-essential g++ clang libclang-rt-14-dev cmake libboost1.81-dev libcereal-dev libeigen3-dev
          libxxhash-dev catch2 libcli11-dev python3 python3-numpy python3-torch doxygen pkgconf clang-format
          libopenmpi-dev openmpi-bin nlohmann-json3-dev zlib1g-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
