#!/bin/sh
# demo.sh - the main job of `make demo` (which builds the library and the programs first).
#
# In about two minutes on two cores it reproduces the paper's central result on Fashion-MNIST
# with 3 paired seeds: random-noise pretraining aligns the forward weights with the feedback
# matrices (noise_alignment), and a network pretrained that way learns faster with feedback
# alignment than one that was not, closer to backprop (fast_learning). It prints one table and
# says where the CSV files and figures went (out/demo/).
#
# Data: uses data/fashion-mnist/ when present; otherwise runs scripts/get-data.sh; if that
# cannot work, it prints exactly what to run. Settings: DEMO_SEEDS (3), DEMO_OUT (out/demo).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${DEMO_OUT:-out/demo}
SEEDS=${DEMO_SEEDS:-3}
BIN=build/paper
# One BLAS thread per program: the matrices are small, and the two programs run side by side.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

for p in noise_alignment fast_learning; do
    [ -x "$BIN/$p" ] || { echo "demo: $BIN/$p is missing; run: make demo" >&2; exit 1; }
done

# ---- data -------------------------------------------------------------------------------------
have_fashion() { [ -r data/fashion-mnist/train-images-idx3-ubyte.gz ] &&
                 [ -r data/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; }
if ! have_fashion; then
    echo "demo: data/fashion-mnist/ is missing; running scripts/get-data.sh"
    if ! ./scripts/get-data.sh; then
        echo "demo: scripts/get-data.sh did not finish" >&2
    fi
fi
if ! have_fashion; then
    cat >&2 <<'EOF'
demo: Fashion-MNIST is still not available. Run these, then `make demo` again:
    sudo ./scripts/install-deps.sh     # Debian packages, including dataset-fashion-mnist
    ./scripts/get-data.sh              # links it (and fetches MNIST, the digits) into data/
EOF
    exit 1
fi

mkdir -p "$OUT"
start=$(date +%s)
echo "demo: Fashion-MNIST, 784-100-10, $SEEDS paired seeds, the programs' default recipe"
echo "demo: running noise_alignment (in the background) and fast_learning; progress below."

# noise_alignment runs beside fast_learning (one core each); its report goes to a file.
"$BIN/noise_alignment" --quiet --seeds "$SEEDS" --no-bp-control --log-every 250 \
    --out "$OUT/noise_alignment" > "$OUT/noise_alignment.txt" 2>&1 &
na_pid=$!
"$BIN/fast_learning" --seeds "$SEEDS" --datasets fashion --depths 2 \
    --out "$OUT/fast_learning" > "$OUT/fast_learning.txt"
if ! wait "$na_pid"; then
    echo "demo: noise_alignment failed:" >&2
    cat "$OUT/noise_alignment.txt" >&2
    exit 1
fi
took=$(( $(date +%s) - start ))

# ---- the table ----------------------------------------------------------------------------------
S="$OUT/fast_learning/settings.txt"
setting() { sed -n "s/^$1 = //p" "$S"; }
echo
echo "Feedback alignment with and without random-noise pretraining, Fashion-MNIST, 784-100-10, $SEEDS seeds"
echo "noise: $(setting noise-steps) steps of $(setting noise-opt) lr $(setting noise-lr), batch $(setting noise-batch);" \
     "data: $(setting opt) lr $(setting lr), batch $(setting batch), $(setting epochs) epochs on $(setting train-n) images"
echo "angle: last layer, mean per-unit angle between W and B (deg); AUC: mean test accuracy over"
echo "the epochs; p: Welch t-test against FA without noise (paired t-test in brackets)"
echo
sed -n '/^condition/,/^noise closed/p' "$OUT/fast_learning.txt"
# The noise phase alone: the one-sample t-test of the per-unit angles against 90 degrees.
awk -F, 'NR > 1 && $1 == "fa" { n++; a0 += $3; a1 += $4; if ($8 > pmax) pmax = $8 }
         END { if (n) printf "noise phase alone: last-layer angle %.1f -> %.1f deg (mean of %d seeds), t-test vs 90 deg: every seed p <= %.1g\n", a0 / n, a1 / n, n, pmax }' \
    "$OUT/noise_alignment/summary.csv"

# ---- figures --------------------------------------------------------------------------------------
echo
if command -v gnuplot >/dev/null 2>&1; then
    ./scripts/figures/make-figures.sh "$OUT" "$OUT" | grep '\.png' | sed 's/^make-figures: /figure: /'
else
    echo "demo: gnuplot is not installed, so no figures; for them: sudo apt-get install -y gnuplot-nox"
    echo "      then: scripts/figures/make-figures.sh $OUT $OUT"
fi
echo "CSV: $OUT/noise_alignment/ and $OUT/fast_learning/ (reports: $OUT/*.txt)"
echo "demo: done in $took s. The full experiments: make paper-results; the report: docs/reproduction.md"
