#!/usr/bin/env bash
# Installs the Debian 12 packages that building, testing and the demo need, if any is missing.
# Idempotent; needs root (or sudo). Usage: scripts/install-deps.sh [--bench]
#   --bench  also installs python3-torch, the peer that `make bench` compares against.
set -euo pipefail

pkgs=(gcc g++ make clang libclang-rt-14-dev llvm-14 pkg-config libopenblas-dev liblapacke-dev libcmocka-dev zlib1g-dev
      dataset-fashion-mnist python3 python3-numpy python3-hypothesis python3-sklearn gnuplot-nox abigail-tools doxygen valgrind
      nodejs npm openmpi-bin libopenmpi-dev)
[ "${1:-}" = "--bench" ] && pkgs+=(python3-torch)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere than Debian (e.g. a preinstalled Node.js): accept those.
if command -v npm >/dev/null 2>&1; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<< "${missing[*]}"

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
