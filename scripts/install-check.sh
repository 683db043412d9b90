#!/usr/bin/env bash
# Installs libfanoise into a temporary DESTDIR, builds a small program against the installed copy
# with pkg-config, shared and static, runs both, then uninstalls and checks nothing is left.
# Run from the repository root (`make install-check` does). Exits non-zero on any failure.
set -euo pipefail

MAKE=${MAKE:-make}
CC=${CC:-cc}
PREFIX=/usr/local
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
work="$tmp/work"
mkdir -p "$work"

fail() { echo "install-check: FAIL: $*" >&2; exit 1; }

$MAKE --no-print-directory install DESTDIR="$dest" PREFIX="$PREFIX" >/dev/null
(cd "$dest" && find . \( -type f -o -type l \) | sort) > "$work/installed.txt"
echo "install-check: installed $(wc -l < "$work/installed.txt") files under $dest$PREFIX"

pc="$dest$PREFIX/lib/pkgconfig/fanoise.pc"
[ -f "$pc" ] || fail "no fanoise.pc in $dest$PREFIX/lib/pkgconfig"
grep -qx "prefix=$PREFIX" "$pc" || fail "fanoise.pc was generated for another prefix: $(grep '^prefix=' "$pc")
(pkgconfig/fanoise.pc is made at build time; rebuild it with PREFIX=$PREFIX)"

# pkg-config reads only the installed .pc and prepends the DESTDIR to its -I and -L paths.
export PKG_CONFIG_LIBDIR="$dest$PREFIX/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"
export PKG_CONFIG_PATH=
[ "$(pkg-config --modversion fanoise)" = "$($MAKE -s --no-print-directory print-version)" ] ||
    fail "pkg-config version differs from the Makefile's"

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

# Shared: the plain pkg-config flags.
# shellcheck disable=SC2046
$CC -std=c11 -Wall -Wextra -Werror "$work/consumer.c" -o "$work/consumer_shared" \
    $(pkg-config --cflags --libs fanoise)
libdir="$dest$PREFIX/lib"
resolved=$(LD_LIBRARY_PATH="$libdir" ldd "$work/consumer_shared" | awk '/libfanoise/ {print $3}')
[ "$resolved" = "$libdir/libfanoise.so.0" ] ||
    fail "the shared build resolves libfanoise to '$resolved', not the installed copy"
LD_LIBRARY_PATH="$libdir" "$work/consumer_shared"

# Static: --static adds Libs.private; -Bstatic makes the linker take libfanoise.a, not the .so.
static_libs=$(pkg-config --static --libs fanoise | sed 's/-lfanoise\b/-Wl,-Bstatic -lfanoise -Wl,-Bdynamic/')
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -Wall -Wextra -Werror "$work/consumer.c" -o "$work/consumer_static" \
    $(pkg-config --static --cflags fanoise) $static_libs
if readelf -d "$work/consumer_static" | grep -q 'NEEDED.*libfanoise'; then
    fail "the static build still needs libfanoise.so"
fi
"$work/consumer_static"

$MAKE --no-print-directory uninstall DESTDIR="$dest" PREFIX="$PREFIX" >/dev/null
left=0
while read -r f; do
    if [ -e "$dest/$f" ] || [ -L "$dest/$f" ]; then echo "install-check: left behind: $f" >&2; left=1; fi
done < "$work/installed.txt"
[ $left -eq 0 ] || fail "uninstall left files behind"
echo "install-check: shared and static builds against the installed copy ran; uninstall is clean"
