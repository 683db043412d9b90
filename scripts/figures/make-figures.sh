#!/bin/sh
# make-figures.sh - draws the paper figures from the programs' CSV with gnuplot (gnuplot-nox).
# Usage: scripts/figures/make-figures.sh IN_DIR OUT_DIR
#   IN_DIR holds one sub-directory per program (noise_alignment/, fast_learning/, ...), as the
#   programs write with their default --out under out/paper/ or scripts/demo.sh under out/demo/.
# Draws every figure whose CSV is there and says which are missing.
set -eu
IN=${1:-out/paper}
OUT=${2:-docs/figures}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v gnuplot >/dev/null 2>&1 || {
    echo "make-figures: gnuplot is not installed; install it with: apt-get install -y gnuplot-nox" >&2
    exit 1
}
mkdir -p "$OUT"
drawn=0
for spec in fig1_noise_alignment:noise_alignment:bands.csv \
            fig2_fast_learning:fast_learning:table.csv \
            fig2fg_order_effect:order_effect:phase_bars.csv \
            fig4_generalization:generalization:bands.csv \
            fig5_ood:ood:bars.csv \
            fig6_meta_loss:meta_loss:bands.csv \
            fig_rules:rules:summary.csv; do
    fig=${spec%%:*}; rest=${spec#*:}; prog=${rest%%:*}; probe=${rest#*:}
    if [ -f "$IN/$prog/$probe" ]; then
        gnuplot -e "scriptdir='$HERE'; indir='$IN/$prog'; outfile='$OUT/$fig.png'" "$HERE/$fig.gp"
        echo "make-figures: $OUT/$fig.png"
        drawn=$((drawn + 1))
    else
        echo "make-figures: skipped $fig: no $IN/$prog/$probe (run build/paper/$prog --out $IN/$prog)"
    fi
done
[ "$drawn" -gt 0 ] || { echo "make-figures: nothing to draw in $IN" >&2; exit 1; }
