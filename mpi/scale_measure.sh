#!/bin/sh
# scale_measure.sh - the measurements of docs/scale-out.md: data-parallel training at 1 and 2
# ranks for three network sizes, and a sweep at 1 and 2 ranks. Prints the load average before
# each run (the machine is shared). Usage: sh mpi/scale_measure.sh [OUT_DIR]   (after make mpi)
set -eu
OUT=${1:-build/mpi/measure}
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
# On a machine shared with other jobs, ranks waiting in a collective must not spin on a core.
GENTLE="--bind-to none --mca mpi_yield_when_idle 1"
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
load() { cut -d' ' -f1 /proc/loadavg; }
dp() { # label args...
    label=$1; shift
    for mode in plain np1 np2 np2gentle; do
        case $mode in
            plain) cmd="$MPIRUN -np 1 build/mpi/dp_train --plain $*" ;;
            np1) cmd="$MPIRUN -np 1 build/mpi/dp_train $*" ;;
            np2) cmd="$MPIRUN -np 2 build/mpi/dp_train $*" ;;
            np2gentle) cmd="$MPIRUN $GENTLE -np 2 build/mpi/dp_train $*" ;;
        esac
        l=$(load)
        r=$($cmd | tail -1)
        echo "dp $label $mode load $l: $r"
    done
}
dp small --steps 3000
dp wide --width 1000 --depth 3 --batch 256 --steps 150
dp cifar --synthetic 3072 --width 1000 --depth 3 --batch 256 --steps 100
cat > "$OUT/m.sweep" <<'SWEEP'
fast  fast_learning 0-7 1 --datasets digits --depths 2 --noise-steps 2000 --epochs 5 --train-n 0
SWEEP
for np in 1 2; do
    rm -rf "$OUT/sweep$np"
    l=$(load)
    start=$(date +%s.%N)
    $MPIRUN -np $np build/mpi/fanoise-sweep "$OUT/m.sweep" --out "$OUT/sweep$np" > "$OUT/sweep$np.log"
    end=$(date +%s.%N)
    echo "sweep np$np load $l: $(grep 'tasks ran' "$OUT/sweep$np.log") (outer wall $(echo "$end - $start" | bc) s)"
done
cmp "$OUT/sweep1/results/fast/summary.csv" "$OUT/sweep2/results/fast/summary.csv" &&
    echo "sweep: np1 and np2 results identical"
