#!/bin/sh
# recipe_sweep.sh - the recipe search behind the programs' defaults (docs/reproduction.md,
# "Recipes tried"). Each line runs fast_learning (Fashion-MNIST, 784-100-10, paired seeds) with
# one change from the defaults, and noise_alignment for the noise-phase variants (to see whether
# the alignment holds over a longer noise phase). Prints one summary row per recipe.
# Usage: examples/paper/recipe_sweep.sh [OUT_DIR] [SEEDS]     (about 20-30 minutes on 2 cores)
set -eu
OUT=${1:-out/sweep}
SEEDS=${2:-5}
BIN=build/paper
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$OUT"

# name | extra flags for both programs
RECIPES='default|
noise_sgd_0.01_6000|--noise-opt sgd --noise-lr 0.01 --noise-steps 6000
noise_sgd_0.1_6000|--noise-opt sgd --noise-lr 0.1 --noise-steps 6000
noise_momentum_0.01_6000|--noise-opt momentum --noise-lr 0.01 --noise-steps 6000
noise_adam_1e-3_8000|--noise-lr 1e-3
noise_adam_3e-4_8000|--noise-lr 3e-4
noise_adam_1e-4_2000|--noise-steps 2000
noise_adam_1e-4_4000|--noise-steps 4000
noise_adam_1e-4_16000|--noise-steps 16000
noise_adam_3e-5_16000|--noise-lr 3e-5 --noise-steps 16000
noise_uniform|--noise-kind uniform
noise_soft_labels|--noise-labels soft
noise_batch_256|--noise-batch 256
data_sgd_0.05|--lr 0.05
data_momentum_0.9|--opt momentum --lr 0.01
data_adam_1e-3|--opt adam --lr 1e-3
data_full_60k|--train-n 0 --epochs 2
init_xavier|--init xavier'

printf '%s\n' "$RECIPES" | while IFS='|' read -r name flags; do
    [ -n "$name" ] || continue
    d="$OUT/$name"
    if [ ! -f "$d/fast_learning/table.csv" ]; then
        # shellcheck disable=SC2086
        "$BIN/fast_learning" --quiet --datasets fashion --depths 2 --seeds "$SEEDS" \
            --out "$d/fast_learning" $flags > "$d.fast_learning.txt" 2>&1 || echo "$name: fast_learning failed"
    fi
    case "$name" in
    noise_*|default)
        if [ ! -f "$d/noise_alignment/summary.csv" ]; then
            # shellcheck disable=SC2086
            "$BIN/noise_alignment" --quiet --no-bp-control --seeds 3 --out "$d/noise_alignment" \
                $flags > "$d.noise_alignment.txt" 2>&1 || echo "$name: noise_alignment failed"
        fi ;;
    esac
done

# One row per recipe: AUC and final accuracy of each condition, p-values, angles.
printf '%-26s %-7s %-7s %-7s %-9s %-7s %-7s %-7s %-9s %-6s %-6s %-6s\n' recipe \
    auc_fa auc_nz auc_bp p_auc acc_fa acc_nz acc_bp p_acc ang_fa ang_nz gap%
printf '%s\n' "$RECIPES" | while IFS='|' read -r name flags; do
    t="$OUT/$name/fast_learning/table.csv"
    [ -f "$t" ] || continue
    awk -F, -v name="$name" '
        $3 == "fa" { af = $5; cf = $7; gf = $10 }
        $3 == "fa_noise" { an = $5; cn = $7; gn = $10; pa = $12; pc = $14 }
        $3 == "bp" { ab = $5; cb = $7 }
        END { gap = (ab != af) ? 100 * (an - af) / (ab - af) : 0;
              printf "%-26s %-7.4f %-7.4f %-7.4f %-9.2g %-7.4f %-7.4f %-7.4f %-9.2g %-6.1f %-6.1f %-6.0f\n",
                     name, af, an, ab, pa, cf, cn, cb, pc, gf, gn, gap }' "$t"
done
