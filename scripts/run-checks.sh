#!/bin/sh
# run-checks.sh LOGDIR TARGET... - what `make check` and `make ci` run (see the Makefile's head).
#
# Runs `$MAKE TARGET` for each target in order, its output in LOGDIR/TARGET.log. Prints one line
# per target, the end of the log of a failed one, and last one line "N passed, N failed" over
# everything that ran: a target whose log has lines "label: P passed, F failed" counts their sums,
# any other target counts once, by its exit status. Goes on after a failure so that one run shows
# every problem; exits 1 if anything failed. V=1 shows each target's output as it runs.
set -u

logdir=$1
shift
MAKE=${MAKE:-make}
V=${V:-0}
mkdir -p "$logdir"

total_pass=0
total_fail=0
for t in "$@"; do
    log="$logdir/$t.log"
    if [ "$V" = 1 ]; then
        echo "==> $MAKE $t"
        # The exit status of make, not of tee, decides.
        { $MAKE "$t" 2>&1; echo "$?" > "$log.rc"; } | tee "$log"
        rc=$(cat "$log.rc")
        rm -f "$log.rc"
    else
        $MAKE "$t" > "$log" 2>&1
        rc=$?
    fi
    # Sums of every "label: P passed, F failed" line of the log, and how many there were.
    set -- $(sed -n 's/^[A-Za-z0-9_.+-]*: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$log" |
             awk '{p += $1; f += $2; n++} END {print p + 0, f + 0, n + 0}')
    p=$1 f=$2 groups=$3
    if [ "$groups" -eq 0 ]; then
        if [ "$rc" -eq 0 ]; then p=1 f=0; else p=0 f=1; fi
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # it failed after (or outside) the checks it counted, e.g. while building
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
        if [ "$groups" -eq 0 ]; then detail=""; else detail="$p checks"; fi
        printf '  ok     %-22s %s\n' "$t" "$detail"
    else
        printf '  FAIL   %-22s %s passed, %s failed; log: %s\n' "$t" "$p" "$f" "$log"
        [ "$V" = 1 ] || tail -n 40 "$log" | sed 's/^/         | /'
    fi
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
