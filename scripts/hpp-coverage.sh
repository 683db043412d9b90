#!/bin/sh
# hpp-coverage.sh HEADER HPP - checks that the C++ header calls every function the C header
# declares (FAN_API ... fan_name(...)), so that no part of the C API is out of C++'s reach. A
# function whose _ex variant is called counts as covered: the _ex constructors do what the plain
# ones do, plus options and the reason of a failure, which the C++ header always wants.
# Prints the missing names and fails if there are any. `make cpp-check` runs it.
set -eu
h=$1 hpp=$2
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# Declarations span lines: join the header, then take the name before each "(" after FAN_API.
tr '\n' ' ' < "$h" | grep -o 'FAN_API[^;]*;' | grep -o 'fan_[a-z0-9_]*[[:space:]]*(' |
    sed 's/[[:space:]]*($//' | sort -u > "$tmp"
missing=0 total=0
while read -r f; do
    total=$((total + 1))
    if ! grep -q "\b$f(" "$hpp" && ! grep -q "\b${f}_ex(" "$hpp"; then
        echo "hpp-coverage: $hpp does not call $f (nor ${f}_ex)"
        missing=$((missing + 1))
    fi
done < "$tmp"
echo "hpp-coverage: $hpp calls $((total - missing)) of the $total functions of $h"
[ "$missing" -eq 0 ]
