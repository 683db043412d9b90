#!/bin/sh
# run_all.sh - every experiment with its defaults, one after another (they share a two-core
# machine politely: one BLAS thread, one program at a time), into OUT_DIR/<program>/, with each
# program's report in OUT_DIR/<program>.txt and its wall time in OUT_DIR/times.txt.
# Usage: examples/paper/run_all.sh [OUT_DIR] [program ...]     (make paper-results)
set -eu
OUT=${1:-out/paper}
[ $# -gt 0 ] && shift
PROGS=${*:-noise_alignment fast_learning order_effect generalization ood meta_loss}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$OUT"
for p in $PROGS; do
    echo "run_all: $p (progress in $OUT/$p.log)"
    start=$(date +%s)
    build/paper/"$p" --out "$OUT/$p" > "$OUT/$p.txt" 2> "$OUT/$p.log"
    took=$(( $(date +%s) - start ))
    echo "$p $took s ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))" >> "$OUT/times.txt"
    echo "run_all: $p took $took s"
done
echo "run_all: done; figures: make figures PAPER_OUT=$OUT"
