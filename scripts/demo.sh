#!/bin/sh
# demo.sh - the main job of `make demo` (which builds the library and the programs first).
#
# In a few minutes on two cores it reproduces the paper's central result on Fashion-MNIST with
# 3 paired seeds: random-noise pretraining aligns the forward weights with the feedback matrices
# (noise_alignment), and a network pretrained that way learns faster with feedback alignment
# than one that was not, closer to backprop (fast_learning). The data phase runs with both
# recipes this work tried: Adam at lr 1e-3 (the programs' default, the one a validation split
# chose; README.md) and plain SGD at lr 0.01 (the first one tried). It prints one table per
# recipe and says where the CSV files and figures went (out/demo/).
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
echo "demo: Fashion-MNIST, 784-100-10, $SEEDS paired seeds, the data phase with Adam and with plain SGD"
echo "demo: running noise_alignment (in the background) and fast_learning twice; progress below."

# noise_alignment runs beside fast_learning (one core each); its report goes to a file.
"$BIN/noise_alignment" --quiet --seeds "$SEEDS" --no-bp-control --log-every 250 \
    --out "$OUT/noise_alignment" > "$OUT/noise_alignment.txt" 2>&1 &
na_pid=$!
"$BIN/fast_learning" --seeds "$SEEDS" --datasets fashion --depths 2 \
    --out "$OUT/fast_learning" > "$OUT/fast_learning.txt"
"$BIN/fast_learning" --seeds "$SEEDS" --datasets fashion --depths 2 --opt sgd --lr 0.01 \
    --out "$OUT/fast_learning_sgd" > "$OUT/fast_learning_sgd.txt"
if ! wait "$na_pid"; then
    echo "demo: noise_alignment failed:" >&2
    cat "$OUT/noise_alignment.txt" >&2
    exit 1
fi
took=$(( $(date +%s) - start ))

# ---- the tables -----------------------------------------------------------------------------------
setting() { sed -n "s/^$2 = //p" "$OUT/$1/settings.txt"; }
echo
echo "Feedback alignment with and without random-noise pretraining, Fashion-MNIST, 784-100-10, $SEEDS seeds"
echo "noise: $(setting fast_learning noise-steps) steps of $(setting fast_learning noise-opt) lr" \
     "$(setting fast_learning noise-lr), batch $(setting fast_learning noise-batch); data: batch" \
     "$(setting fast_learning batch), $(setting fast_learning epochs) epochs on $(setting fast_learning train-n) images"
echo "angle: last layer, mean per-unit angle between W and B (deg); AUC: mean test accuracy over"
echo "the epochs; p: Welch t-test against FA without noise (paired t-test in brackets)"
for run in fast_learning fast_learning_sgd; do
    echo
    if [ "$run" = fast_learning ]; then what="chosen on a validation split, see README.md"
    else what="plain SGD, the first recipe tried"; fi
    echo "data phase $(setting $run opt) lr $(setting $run lr) ($what):"
    sed -n '/^condition/,/^noise closed/p' "$OUT/$run.txt"
done
echo
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
echo "CSV: $OUT/noise_alignment/, $OUT/fast_learning/ and $OUT/fast_learning_sgd/ (reports: $OUT/*.txt)"
echo "demo: done in $took s. The full experiments: make paper-results; the report: docs/reproduction.md"
