#!/usr/bin/env bash
# What the kernel's scheduler costs: context switches and CPU, counted from /proc.
#   cold  ROUNDS times a cold 50,000-record list (the 60,000-record demo meeting), plain then
#         gzip, each after `DELETE .../cache`: switches and CPU a list.
#   hits  the API page's sample meeting (2 records) from the cache under wrk, then hyper alone
#         serving the same bytes (bench/hyper_floor.rs), same connections: switches and CPU a
#         request. Involuntary switches are preemptions: which server wrk's threads preempt
#         depends on how the busy threads share the cores (bench/README.md, "Small hits").
# Switches are summed over the process's threads (/proc/PID/task/*/status). A thread that ends
# during a measurement takes its count with it; the blocking pool keeps its threads for 10 s, so
# a warm-up run before each measurement keeps them alive through it.
# TOKIO_WORKER_THREADS=1 runs every server here with one async worker (tokio reads it).
# Usage: bench/switches.sh   (ROUNDS=3 CONNECTIONS=64 DURATION=4s; GATEWAY=<binary>; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk"; exit 1; }
. bench/common.sh
cargo build --release --quiet --example hyper_floor
start_simulator --calls-per-minute 4000000000 --calls-per-day 4000000000
start_gateway
auth="Authorization: Bearer $key"

# "voluntary involuntary cpu-ticks" of a process, all its threads together.
counts() {
    awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2}
         END {printf "%d %d ", v, n}' /proc/"$1"/task/*/status
    awk '{print $14 + $15}' /proc/"$1"/stat
}
# Prints what changed between two `counts`, divided by what was done.
report() { # label per count before after
    read -r v0 n0 c0 <<<"$3"
    read -r v1 n1 c1 <<<"$4"
    awk -v l="$1" -v per="$2" -v n="$5" -v v=$((v1 - v0)) -v i=$((n1 - n0)) \
        -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
        cpu = c / hz / n; unit = "ms"; cpu *= 1e3
        if (cpu < 1) { cpu *= 1e3; unit = "us" }
        printf "%-18s voluntary %9.3f  involuntary %9.3f  CPU %7.1f %s  (a %s, %d of them)\n",
            l, v / n, i / n, cpu, unit, per, n }'
}

list="http://127.0.0.1:$gateway_port/meetings/100000000000000002/participants"
cold() { # [header]
    curl -fs -X DELETE -H "$auth" "$list/cache" -o /dev/null || true
    curl -fs -H "$auth" ${1:+-H "$1"} "$list" -o /dev/null
}
echo "$(nproc) cores"
cold
cold "Accept-Encoding: gzip"
rounds=${ROUNDS:-3}
before=$(counts "$gateway_pid")
for _ in $(seq "$rounds"); do
    cold
    cold "Accept-Encoding: gzip"
done
report "cold list" list "$before" "$(counts "$gateway_pid")" $((2 * rounds))

small=/meetings/144115214488302892/participants
curl -fs -H "$auth" "http://127.0.0.1:$gateway_port$small" -o "$work/small"
floor_port=$(port)
target/release/examples/hyper_floor "$floor_port" "$work/small" >/dev/null 2>&1 &
floor_pid=$!
pids+=($floor_pid)
wait_for "http://127.0.0.1:$floor_port/"
load() { # pid url label
    wrk -t2 -c"${CONNECTIONS:-64}" -d1s -H "$auth" "$2" >/dev/null
    local before requests
    before=$(counts "$1")
    requests=$(wrk -t2 -c"${CONNECTIONS:-64}" -d"${DURATION:-4s}" -H "$auth" "$2" |
        awk '/requests in/ {print $1}')
    report "$3" request "$before" "$(counts "$1")" "$requests"
}
for _ in 1 2; do
    load "$gateway_pid" "http://127.0.0.1:$gateway_port$small" "gateway small hit"
    load "$floor_pid" "http://127.0.0.1:$floor_port/" "hyper alone"
done
