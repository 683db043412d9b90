#!/bin/sh
# sweep_check.sh - the sweep runner's promises, on small versions of the six paper programs and
# the rules study (make mpi-check):
#   1. a sweep whose rank 1 is killed part-way, then rerun on 3 ranks, ends with exactly the
#      files of an uninterrupted serial (1-rank) sweep: the merged results and every task's CSV;
#   2. the rerun skips exactly the tasks the killed run had published, and no task was left half
#      published;
#   3. per seed, the sweep's rows are bit-identical to those of each program run directly over
#      all the seeds at once.
# Usage: MPIRUN="mpirun --allow-run-as-root --oversubscribe" sweep_check.sh SWEEP_BIN PAPER_BIN DIR
# Prints one line per check and "sweep: P passed, F failed"; exits 1 if any check failed.
set -u
SWEEP=$1
BIN=$2
W=$3
MPIRUN=${MPIRUN:-mpirun}
export OPENBLAS_NUM_THREADS=1

if [ ! -e data/digits/digits.csv.gz ] || [ ! -e data/fashion-mnist/train-images-idx3-ubyte.gz ] ||
   [ ! -e data/mnist/train-images-idx3-ubyte.gz ]; then
    echo "sweep: skipped: data/ is missing (make data fetches it)"
    exit 0
fi

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

rm -rf "$W"
mkdir -p "$W"
SPEC=$W/check.sweep
cat > "$SPEC" <<'EOF'
# label   program          seeds per_task arguments (small versions of the real experiments)
fast      fast_learning    0-3   1  --datasets digits --depths 2 --noise-steps 100 --epochs 1 --evals-per-epoch 2 --train-n 0
noise     noise_alignment  0-3   1  --noise-steps 200 --log-every 100 --probe 100 --width 30 --bins 10
order     order_effect     0-2   1  --dataset digits --noise-steps 100 --epochs 1 --logs-per-phase 2 --train-n 0
general   generalization   0-2   1  --dataset digits --per-class 20 --noise-steps 100 --epochs 2 --gram-samples 100 --bins 10
ood       ood              3-4   1  --dataset mnist --train-n 1000 --noise-steps 100 --epochs 1 --evals-per-epoch 1 --translations 2 --rotations 20 --scales 0.8
meta      meta_loss        0-2   1  --tasks digits --noise-steps 100 --every 50 --adapt-steps 10 --train-n 0
rules_fa  rules            0-3   2  --rules fa --datasets fashion --depths 2 --train-n 2500 --val 500 --select-seeds 1 --noise-steps 50 --epochs 1 --evals-per-epoch 1
EOF
TOTAL=21

finished() { find "$1/tasks" -name task.txt 2>/dev/null | wc -l | tr -d ' '; }

# ---- 1. the uninterrupted serial sweep --------------------------------------------------------
if $MPIRUN -np 1 "$SWEEP" "$SPEC" --out "$W/serial" --bin "$BIN" > "$W/serial.log" 2>&1 &&
   [ "$(finished "$W/serial")" -eq $TOTAL ]; then
    ok "serial sweep: $TOTAL tasks"
else
    bad "serial sweep (log: $W/serial.log)"; cat "$W/serial.log"
fi

# ---- 2. killed part-way: rank 1 gets SIGKILL once 3 tasks are published ----------------------
$MPIRUN -np 2 "$SWEEP" "$SPEC" --out "$W/killed" --bin "$BIN" > "$W/killed.log" 2>&1 &
job=$!
killed=0
i=0
while [ $i -lt 1200 ]; do
    if [ "$(finished "$W/killed")" -ge 3 ] && [ -s "$W/killed/.run/rank-1.pid" ]; then
        kill -9 "$(cat "$W/killed/.run/rank-1.pid")" 2>/dev/null && killed=1
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
wait $job
status=$?
sleep 1
done_before=$(finished "$W/killed")
sleep 1
if [ $killed -eq 1 ] && [ $status -ne 0 ] && [ "$done_before" -lt $TOTAL ] &&
   [ "$(finished "$W/killed")" -eq "$done_before" ]; then
    ok "rank 1 killed with $done_before of $TOTAL tasks published; the job stopped, its tasks too"
else
    bad "kill part-way (killed=$killed, mpirun status $status, $done_before of $TOTAL published)"
    cat "$W/killed.log"
fi
partial=0
for d in "$W"/killed/tasks/*/*; do
    [ -d "$d" ] && [ ! -e "$d/task.txt" ] && partial=$((partial + 1))
done
if [ $partial -eq 0 ]; then ok "no half-published task"; else bad "$partial half-published tasks"; fi

# ---- 3. the rerun on 3 ranks finishes the rest ---------------------------------------------------
if $MPIRUN -np 3 "$SWEEP" "$SPEC" --out "$W/killed" --bin "$BIN" > "$W/rerun.log" 2>&1 &&
   grep -q "$done_before finished before" "$W/rerun.log" && [ "$(finished "$W/killed")" -eq $TOTAL ]; then
    ok "rerun on 3 ranks skipped the $done_before published tasks and ran the rest"
else
    bad "rerun (log: $W/rerun.log)"; cat "$W/rerun.log"
fi

# Same files, same bytes: the merged results and every task's CSV files.
list() { (cd "$1" && find results tasks -name '*.csv' | sort); }
if [ "$(list "$W/serial")" = "$(list "$W/killed")" ]; then
    diffs=0
    for f in $(list "$W/serial"); do
        cmp -s "$W/serial/$f" "$W/killed/$f" || { diffs=$((diffs + 1)); echo "  differs: $f"; }
    done
    n=$(list "$W/serial" | wc -l | tr -d ' ')
    if [ $diffs -eq 0 ]; then ok "killed + rerun equals the serial sweep: $n CSV files, byte for byte"
    else bad "$diffs of $n CSV files differ between the serial and the killed + rerun sweep"; fi
else
    bad "the serial and the killed + rerun sweep produced different files"
fi

# ---- 4. per seed, the sweep's rows are the programs' own -----------------------------------------
# Rows of a CSV whose "seed" column equals $2, in file order.
seed_rows() { awk -F, -v s="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seed") c = i; next }
                                 c && $c == s' "$1"; }
rows_checked=0
mkdir -p "$W/direct"
mismatch=0
grep -v '^#' "$SPEC" | while read -r label prog seeds per args; do
    [ -n "$label" ] || continue
    first=${seeds%-*}
    last=${seeds#*-}
    # shellcheck disable=SC2086
    "$BIN/$prog" --seeds $((last - first + 1)) --seed0 "$first" --out "$W/direct/$label" --quiet \
        $args > "$W/direct/$label.txt" 2>&1 || { echo "MISMATCH $label: direct run failed"; continue; }
    for f in "$W/serial/results/$label"/*.csv; do
        name=$(basename "$f")
        s=$first
        while [ "$s" -le "$last" ]; do
            a=$(seed_rows "$W/direct/$label/$name" "$s")
            b=$(seed_rows "$f" "$s")
            if [ -z "$a" ] || [ "$a" != "$b" ]; then echo "MISMATCH $label/$name seed $s"; fi
            echo "ROWS $(printf '%s\n' "$a" | wc -l)"
            s=$((s + 1))
        done
    done
done > "$W/direct.log"
rows_checked=$(awk '/^ROWS/ { n += $2 } END { print n + 0 }' "$W/direct.log")
mismatch=$(grep -c '^MISMATCH' "$W/direct.log")
if [ "$mismatch" -eq 0 ] && [ "$rows_checked" -gt 0 ]; then
    ok "per-seed rows equal the programs' own runs: $rows_checked rows of 7 programs"
else
    bad "per-seed rows differ from the programs' own runs"; grep '^MISMATCH' "$W/direct.log"
fi

echo "sweep: $pass passed, $fail failed"
[ $fail -eq 0 ]
