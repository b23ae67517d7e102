#!/usr/bin/env bash
# Memory under a burst of cold work: eight distinct 50,000-record lists (the 60,000-record demo
# meeting, each with its own window) asked for at once, the cache bounded at 50 MB. For each
# variant, a fresh gateway: its peak resident memory (VmHWM) until all eight are cached, and its
# resident memory after 20 s idle. Variants: no work budget (GATEWAY_WORK_MAX_BYTES far above
# need), the default budget (256 MiB), and the default budget with glibc's allocator told to
# return large blocks at once (a fixed mmap threshold) and to keep two arenas. With
# MIMALLOC_GATEWAY=<binary built with --features mimalloc>, the default budget with mimalloc too,
# with its default options, told to purge freed memory at once, not to commit arenas eagerly,
# and both.
# Usage: bench/work_memory.sh   (LISTS=8 ROUNDS=1; GATEWAY=<binary> instead of building this tree)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
lists=${LISTS:-8}
start_simulator --calls-per-minute 4000000000
run() { # label, binary, then environment assignments for the gateway
    local label=$1 binary=$2 gateway_port gateway base now
    shift 2
    gateway_port=$(port)
    env "$@" WEMEET_API_BASE="http://127.0.0.1:$upstream_port" WEMEET_APP_ID=200000001 \
        WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
        WEMEET_OPERATOR_USERID=owner1 WEMEET_CALLS_PER_MINUTE=4000000000 \
        GATEWAY_LISTEN="127.0.0.1:$gateway_port" GATEWAY_ALLOW_ANONYMOUS=true GATEWAY_RATE_LIMIT=0 \
        GATEWAY_CACHE_MAX_BYTES=50MB RUST_LOG=warn \
        "$binary" serve >"$work/gateway.log" 2>&1 &
    gateway=$!
    pids+=($gateway)
    base="http://127.0.0.1:$gateway_port"
    wait_for "$base/healthz"
    now=$(date +%s)
    local started
    started=$(date +%s.%N)
    for i in $(seq 1 "$lists"); do
        # Asked again until answered 200: past the wait for a fetch, a caller gets 202.
        (until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 300 \
            "$base/meetings/100000000000000002/participants?start_time=$((now - 172800 - i))&end_time=$now")" = 200 ]; do
            sleep 1; done) &
    done
    wait_children
    local took peak idle
    took=$(python3 -c "import time; print('%.1f' % (time.time() - $started))")
    peak=$(awk '/VmHWM/ {print $2}' "/proc/$gateway/status")
    sleep 20
    idle=$(awk '/VmRSS/ {print $2}' "/proc/$gateway/status")
    local held
    held=$(curl -fs "$base/metrics" | awk '$1 == "gateway_cache_bytes" {print $2}')
    python3 -c "print(f'| $label | $took s | {$peak / 1024:.0f} MiB | {$idle / 1024:.0f} MiB | {$held / 2**20:.1f} MiB |')"
    kill "$gateway"
    wait "$gateway" 2>/dev/null || true
}
wait_children() { # every background job but the simulator and gateways started above
    local job
    for job in $(jobs -p); do
        case " ${pids[*]} " in *" $job "*) ;; *) wait "$job" ;; esac
    done
}
echo "| variant | all $lists cached in | peak resident | resident after 20 s idle | cache holds |"
echo "|---|---|---|---|---|"
for round in $(seq 1 "${ROUNDS:-1}"); do
    run "no work budget" "$gateway_bin" GATEWAY_WORK_MAX_BYTES=64GiB
    run "work budget 256 MiB (default)" "$gateway_bin" GATEWAY_WORK_MAX_BYTES=256MiB
    run "budget, glibc mmap threshold 128 KiB, 2 arenas" "$gateway_bin" \
        GATEWAY_WORK_MAX_BYTES=256MiB \
        GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.arena_max=2
    run "budget, glibc mmap threshold 32 KiB, 2 arenas" "$gateway_bin" \
        GATEWAY_WORK_MAX_BYTES=256MiB \
        GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768:glibc.malloc.arena_max=2
    if [ -n "${MIMALLOC_GATEWAY:-}" ]; then
        run "budget, mimalloc (defaults)" "$MIMALLOC_GATEWAY" GATEWAY_WORK_MAX_BYTES=256MiB
        run "budget, mimalloc, purge at once" "$MIMALLOC_GATEWAY" GATEWAY_WORK_MAX_BYTES=256MiB \
            MIMALLOC_PURGE_DELAY=0
        run "budget, mimalloc, no eager arena commit" "$MIMALLOC_GATEWAY" \
            GATEWAY_WORK_MAX_BYTES=256MiB MIMALLOC_ARENA_EAGER_COMMIT=0
        run "budget, mimalloc, both" "$MIMALLOC_GATEWAY" GATEWAY_WORK_MAX_BYTES=256MiB \
            MIMALLOC_PURGE_DELAY=0 MIMALLOC_ARENA_EAGER_COMMIT=0
    fi
done
