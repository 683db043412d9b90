#!/usr/bin/env bash
# Installs the Python package (bindings/python) as a user would, offline (--no-index: no package
# index is reachable on these machines; setuptools, wheel and numpy come from Debian): into a
# venv made with --system-site-packages, and with pip install --user. Then imports it from
# outside the repository and checks where it found the library: the build tree it was installed
# from, $FANOISE_LIBRARY, or pkg-config after `make install`. Run from the repository root after
# `make` (`make python-install-check` does). Prints "python-install: P passed, F failed".
set -uo pipefail

PYTHON=${PYTHON:-/usr/bin/python3}
MAKE=${MAKE:-make}
root=$(pwd)
tmp=$(mktemp -d)
# pip builds in the source tree (bindings/python/build, *.egg-info): leave the tree as found.
cleanup() { rm -rf "$tmp" "$root/bindings/python/build" "$root/bindings/python/fanoise.egg-info"; }
trap cleanup EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*" >&2; fail=$((fail + 1)); }
tree_lib="$root/lib/libfanoise.so.0"
[ -e "$tree_lib" ] || { echo "python-install-check: build the library first (make)" >&2; exit 1; }

# A tiny run: noise pretraining on a 8-16-4 net must work through the installed package.
probe='import sys, fanoise as fn
net = fn.Net([8, 16, 4], weight_seed=1, feedback_seed=2)
opt = fn.Optimizer(net, fn.OptimizerKind.ADAM, lr=1e-3)
noise = fn.Iter.noise(8, 4, 16, seed=3)
net.pretrain_noise(opt, noise, 20)
assert 0 < fn.alignment(net, 1).mean < 180
assert fn.Net.save.__doc__ and "atomically" in fn.Net.save.__doc__
print(fn.__file__)
print(fn.LIBRARY_PATH)'

# With a clean environment: no variable, no pkg-config path of ours.
run_probe() { # python, then extra environment assignments
    local py=$1
    shift
    (cd "$tmp" && env -u FANOISE_LIBRARY -u PYTHONPATH PKG_CONFIG_PATH= "$@" "$py" -c "$probe")
}

# 1. A venv over Debian's site packages, installed offline without build isolation.
if "$PYTHON" -m venv --system-site-packages "$tmp/venv" > "$tmp/venv.log" 2>&1 &&
   "$tmp/venv/bin/pip" install --no-index --no-build-isolation "$root/bindings/python" \
       >> "$tmp/venv.log" 2>&1; then
    ok "venv --system-site-packages + pip install --no-build-isolation (offline)"
else
    tail -n 30 "$tmp/venv.log" >&2
    bad "venv --system-site-packages + pip install --no-build-isolation (offline)"
fi
out=$(run_probe "$tmp/venv/bin/python" 2>&1)
if [ "$(echo "$out" | sed -n 1p)" = "$tmp/venv/lib/python3.11/site-packages/fanoise/__init__.py" ] ||
   echo "$out" | sed -n 1p | grep -q "^$tmp/venv/lib/python3[.0-9]*/site-packages/fanoise/__init__.py$"; then
    ok "the venv imports its installed copy from outside the repository"
else bad "the venv imports its installed copy: $out"; fi
# The library: pkg-config's if a system install exists, else the tree it was installed from.
want="$tree_lib"
if env PKG_CONFIG_PATH= pkg-config --exists fanoise 2>/dev/null; then
    want="$(env PKG_CONFIG_PATH= pkg-config --variable=libdir fanoise)/libfanoise.so.0"
fi
[ "$(echo "$out" | sed -n 2p)" = "$want" ] &&
    ok "the installed package finds the library ($want)" ||
    bad "the installed package loaded '$(echo "$out" | sed -n 2p)', expected $want"

# 2. FANOISE_LIBRARY wins over everything.
out=$(run_probe "$tmp/venv/bin/python" FANOISE_LIBRARY="$tree_lib" 2>&1)
[ "$(echo "$out" | sed -n 2p)" = "$tree_lib" ] && ok "FANOISE_LIBRARY chooses the library" ||
    bad "FANOISE_LIBRARY: $out"

# 3. pkg-config: an installed copy under a private prefix, found through PKG_CONFIG_PATH.
prefix="$tmp/prefix"
if $MAKE --no-print-directory install PREFIX="$prefix" > "$tmp/install.log" 2>&1; then
    out=$(run_probe "$tmp/venv/bin/python" PKG_CONFIG_PATH="$prefix/lib/pkgconfig" 2>&1)
    [ "$(echo "$out" | sed -n 2p)" = "$prefix/lib/libfanoise.so.0" ] &&
        ok "pkg-config finds an installed library" || bad "pkg-config lookup: $out"
else cat "$tmp/install.log" >&2; bad "make install PREFIX=$prefix"; fi
$MAKE --no-print-directory pkgconfig/fanoise.pc > /dev/null # back to the default prefix

# 4. pip install --user (into a private user base, so nothing of the machine changes). Debian's
# pip refuses --user for its own Python unless told that ~/.local may shadow Debian packages.
userbase="$tmp/user"
if PYTHONUSERBASE="$userbase" "$PYTHON" -m pip install --user --no-index --no-build-isolation \
       --break-system-packages "$root/bindings/python" > "$tmp/user.log" 2>&1; then
    ok "pip install --user --no-build-isolation (offline)"
else tail -n 30 "$tmp/user.log" >&2; bad "pip install --user --no-build-isolation (offline)"; fi
out=$(run_probe "$PYTHON" PYTHONUSERBASE="$userbase" 2>&1)
echo "$out" | sed -n 1p | grep -q "^$userbase/lib/python3[.0-9]*/site-packages/fanoise/__init__.py$" &&
    ok "a --user install imports from the user base" || bad "a --user install: $out"

echo "python-install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
