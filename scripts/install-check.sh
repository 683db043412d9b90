#!/usr/bin/env bash
# Installs libfanoise into a temporary DESTDIR and uses the installed copy as a user would: a C
# program built with pkg-config (shared, static, and fully static with -static), a C++ program
# built by CMake through find_package(fanoise CONFIG) (shared and static targets), the installed
# fanoise tool; checks what `make install` says about ldconfig; then uninstalls and checks that
# nothing is left. Run from the repository root (`make install-check` does).
#
# A check whose tool is missing (cmake, a C++ compiler, the static Fortran runtime) is skipped
# with a message; with FANOISE_CI=1 (`make ci`) a skip is a failure. Prints one line per check and
# "install-check: P passed, F failed"; exits non-zero if any failed.
set -uo pipefail

MAKE=${MAKE:-make}
CC=${CC:-cc}
CXX=${CXX:-c++}
PREFIX=/usr/local
STRICT=${FANOISE_CI:-0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
work="$tmp/work"
mkdir -p "$work"
pass=0 fail=0

ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*" >&2; fail=$((fail + 1)); }
skip() {
    if [ "$STRICT" = 1 ]; then bad "$* (required by make ci)"; else echo "SKIP $*"; fi
}
finish() {
    echo "install-check: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

if ! $MAKE --no-print-directory install DESTDIR="$dest" PREFIX="$PREFIX" > "$work/install.log" 2>&1; then
    cat "$work/install.log"
    bad "make install DESTDIR=$dest"
    finish
fi
(cd "$dest" && find . \( -type f -o -type l \) | sort) > "$work/installed.txt"
ok "installed $(wc -l < "$work/installed.txt") files under $dest$PREFIX"
grep -q "staged in DESTDIR; run ldconfig after copying" "$work/install.log" &&
    ! grep -q "^install: ldconfig" "$work/install.log" &&
    ok "a DESTDIR install does not run ldconfig and says what to do" ||
    bad "a DESTDIR install must not run ldconfig (log: $(tail -n 1 "$work/install.log"))"

libdir="$dest$PREFIX/lib"
pc="$libdir/pkgconfig/fanoise.pc"
if [ -f "$pc" ] && grep -qx "prefix=$PREFIX" "$pc"; then ok "fanoise.pc for prefix $PREFIX"
else bad "fanoise.pc missing or made for another prefix (rebuild it with PREFIX=$PREFIX)"; fi

# pkg-config reads only the installed .pc and prepends the DESTDIR to its -I and -L paths.
export PKG_CONFIG_LIBDIR="$libdir/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"
export PKG_CONFIG_PATH=
[ "$(pkg-config --modversion fanoise)" = "$($MAKE -s --no-print-directory print-version)" ] &&
    ok "pkg-config --modversion is the Makefile's version" || bad "pkg-config version differs"

cat > "$work/consumer.c" <<'C'
/* A user's program: only the installed header and library. */
#include <fanoise.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argc;
    if (strcmp(fan_version_string(), FANOISE_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s, library %s\n", FANOISE_VERSION_STRING, fan_version_string());
        return 1;
    }
    const size_t sizes[] = {8, 16, 4};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *noise = NULL;
    double deg = 0.0;
    fan_status st = fan_net_create(&net, sizes, 3, NULL);
    if (st == FAN_OK) st = fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL);
    if (st == FAN_OK) st = fan_iter_create_noise(&noise, 8, 4, 16, 7, NULL);
    if (st == FAN_OK) st = fan_pretrain_noise(net, opt, noise, 20, NULL, NULL);
    if (st == FAN_OK) st = fan_diag_alignment(net, 1, NULL, 0, &deg, NULL);
    printf("%s: libfanoise %s, 20 noise steps, last-layer angle %.1f deg (%s)\n", argv[0],
           fan_version_string(), deg, fan_strerror(st));
    fan_iter_free(noise);
    fan_optimizer_free(opt);
    fan_net_free(net);
    return st == FAN_OK ? 0 : 1;
}
C

# Shared: the plain pkg-config flags; the program must resolve the installed libfanoise.so.0.
# shellcheck disable=SC2046
if $CC -std=c11 -Wall -Wextra -Werror "$work/consumer.c" -o "$work/consumer_shared" \
        $(pkg-config --cflags --libs fanoise) &&
   [ "$(LD_LIBRARY_PATH="$libdir" ldd "$work/consumer_shared" | awk '/libfanoise/ {print $3}')" = \
     "$libdir/libfanoise.so.0" ] &&
   LD_LIBRARY_PATH="$libdir" "$work/consumer_shared"; then
    ok "C program, shared, pkg-config"
else bad "C program, shared, pkg-config"; fi

# Static libfanoise: --static adds Libs.private; -Bstatic makes the linker take libfanoise.a.
static_libs=$(pkg-config --static --libs fanoise | sed 's/-lfanoise\b/-Wl,-Bstatic -lfanoise -Wl,-Bdynamic/')
gfortran_a=$($CC -print-file-name=libgfortran.a)
if [ "$gfortran_a" = libgfortran.a ]; then
    skip "static links: no libgfortran.a (Debian: libgfortran-12-dev)"
else
    # shellcheck disable=SC2046,SC2086
    if $CC -std=c11 -Wall -Wextra -Werror "$work/consumer.c" -o "$work/consumer_static" \
            $(pkg-config --static --cflags fanoise) $static_libs &&
       ! readelf -d "$work/consumer_static" | grep -q 'NEEDED.*libfanoise' &&
       "$work/consumer_static" > /dev/null; then
        ok "C program, static libfanoise, pkg-config --static"
    else bad "C program, static libfanoise, pkg-config --static"; fi
    # Fully static: proves Libs.private lists everything the static archives need.
    # shellcheck disable=SC2046
    if $CC -static -std=c11 "$work/consumer.c" -o "$work/consumer_allstatic" \
            $(pkg-config --static --cflags --libs fanoise) 2> "$work/static.log" &&
       ! readelf -d "$work/consumer_allstatic" 2>/dev/null | grep -q NEEDED &&
       "$work/consumer_allstatic" > /dev/null; then
        ok "C program, fully static (-static with Libs.private)"
    else cat "$work/static.log" >&2; bad "C program, fully static (-static with Libs.private)"; fi
fi

# The tool: installed, runs, answers --help.
if "$dest$PREFIX/bin/fanoise" --help | grep -q "usage: fanoise COMMAND" &&
   "$dest$PREFIX/bin/fanoise" --version | grep -q "$($MAKE -s --no-print-directory print-version)"; then
    ok "bin/fanoise runs"
else bad "bin/fanoise runs"; fi

# CMake: find_package(fanoise CONFIG) from the staged prefix, a C++ program on fanoise.hpp.
if ! command -v cmake > /dev/null; then
    skip "CMake consumer: cmake is not installed"
elif ! command -v "$CXX" > /dev/null; then
    skip "CMake consumer: no C++ compiler ($CXX)"
else
    mkdir -p "$work/cmake"
    cat > "$work/cmake/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(fanoise_consumer CXX)
find_package(fanoise 0.1 CONFIG REQUIRED)
add_executable(consumer_shared consumer.cpp)
target_link_libraries(consumer_shared PRIVATE fanoise::fanoise)
add_executable(consumer_static consumer.cpp)
target_link_libraries(consumer_static PRIVATE fanoise::fanoise_static)
CMAKE
    cat > "$work/cmake/consumer.cpp" <<'CPP'
// A user's C++ program: the installed fanoise.hpp, found through CMake.
#include <fanoise.hpp>
#include <cstdio>
int main() {
    fanoise::Net net({8, 16, 4});
    fanoise::Optimizer adam(net, FAN_OPTIMIZER_ADAM);
    fanoise::Iter noise = fanoise::Iter::noise(8, 4, 16, 7);
    net.pretrain_noise(adam, noise, 20);
    try {
        fanoise::Net bad({8});
        return 1;
    } catch (const fanoise::Error &e) {
        if (e.status() != FAN_E_INVALID) return 1;
    }
    std::printf("C++ via CMake: libfanoise %s, angle %.1f deg\n", fanoise::version_string(),
                net.alignment(1).mean);
    return 0;
}
CPP
    if cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$dest$PREFIX" \
            -DCMAKE_CXX_COMPILER="$CXX" > "$work/cmake.log" 2>&1 &&
       cmake --build "$work/cmake/build" >> "$work/cmake.log" 2>&1 &&
       LD_LIBRARY_PATH="$libdir" "$work/cmake/build/consumer_shared" &&
       ! readelf -d "$work/cmake/build/consumer_static" | grep -q 'NEEDED.*libfanoise' &&
       "$work/cmake/build/consumer_static" > /dev/null; then
        ok "C++ program via find_package(fanoise CONFIG), fanoise::fanoise and fanoise::fanoise_static"
    else
        tail -n 30 "$work/cmake.log" >&2
        bad "C++ program via find_package(fanoise CONFIG)"
    fi
    # A version the install cannot satisfy is refused.
    sed -i 's/find_package(fanoise 0.1 /find_package(fanoise 1.0 /' "$work/cmake/CMakeLists.txt"
    if cmake -S "$work/cmake" -B "$work/cmake/build1" -DCMAKE_PREFIX_PATH="$dest$PREFIX" \
            > "$work/cmake1.log" 2>&1; then
        bad "find_package(fanoise 1.0) accepted version $($MAKE -s --no-print-directory print-version)"
    else ok "find_package(fanoise 1.0) is refused by a 0.x install"; fi
fi

# Without DESTDIR: ldconfig runs for a directory the run-time linker searches, and a hint is
# printed for one it does not. LDCONFIG stands in for the real one (no root, no system change).
sysroot="$tmp/sys"
if $MAKE --no-print-directory install PREFIX="$sysroot" LD_SYSTEM_DIRS="$sysroot/lib" \
        LDCONFIG="touch $tmp/ldconfig-ran" > "$work/sys.log" 2>&1 && [ -e "$tmp/ldconfig-ran" ]; then
    ok "make install runs ldconfig for a directory the run-time linker searches"
else cat "$work/sys.log" >&2; bad "make install runs ldconfig for a system directory"; fi
rm -f "$tmp/ldconfig-ran"
if $MAKE --no-print-directory install PREFIX="$tmp/home" LD_SYSTEM_DIRS=/usr/lib \
        LDCONFIG="touch $tmp/ldconfig-ran" > "$work/home.log" 2>&1 && [ ! -e "$tmp/ldconfig-ran" ] &&
   grep -q "LD_LIBRARY_PATH=$tmp/home/lib" "$work/home.log"; then
    ok "make install into a private prefix says how to find the library, without ldconfig"
else cat "$work/home.log" >&2; bad "make install into a private prefix"; fi

$MAKE --no-print-directory uninstall DESTDIR="$dest" PREFIX="$PREFIX" > /dev/null
# The installs above regenerated the build tree's fanoise.pc for their prefixes: restore it.
$MAKE --no-print-directory pkgconfig/fanoise.pc > /dev/null
left=0
while read -r f; do
    if [ -e "$dest/$f" ] || [ -L "$dest/$f" ]; then echo "install-check: left behind: $f" >&2; left=1; fi
done < "$work/installed.txt"
[ $left -eq 0 ] && ok "uninstall removes every installed file" || bad "uninstall left files behind"
finish
