#!/usr/bin/env bash
# CPU instructions per rendering of each view of the 50,000-record list, counted by callgrind:
# the same count for the same binary whatever else the machine is doing, where the wall and CPU
# times of bench/view_render.rs move by half from run to run on a shared machine. The view_render
# benchmark runs under valgrind making the list and then a view once, and again making the list
# and the view six times; the difference, divided by five, is one rendering (both threads'
# user-space instructions: valgrind runs them one at a time; the kernel's work is not counted),
# with what varies in making the list (hash seeds) cancelled. With BASELINE=<binary>
# (an earlier build of view_render) the same is counted for it, so that a change is compared
# with the code it replaced.
#
# Usage: bench/view_instructions.sh   (BASELINE=<binary>; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind"; exit 1; }
bench=$(cargo bench --bench view_render --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "view_render" and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Instructions of one run of the benchmark making VIEW ROUNDS times.
count() { # binary rounds view
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$1" "$2" "$3" >/dev/null 2>"$work/err"
    awk '/Collected/ {print $4}' "$work/err"
}
views=("attendance" "attendance CSV" "participants CSV")
for binary in "$bench" ${BASELINE:+"$BASELINE"}; do
    echo "$binary"
    for view in "${views[@]}"; do
        once=$(count "$binary" 1 "$view")
        six=$(count "$binary" 6 "$view")
        awk -v view="$view" -v six="$six" -v once="$once" \
            'BEGIN { printf "  %-18s %6.1f M instructions\n", view, (six - once) / 5e6 }'
    done
done
