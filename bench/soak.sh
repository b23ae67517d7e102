#!/usr/bin/env bash
# A soak: DURATION seconds (default 1800) of mixed load on one release gateway and simulator,
# sampling the gateway's resident memory, open file descriptors, threads and runtime tasks every
# 10 s (bench/soak.py drives and samples). The load: hits on the live list (JSON, gzip,
# attendance, CSV), a new cold list every half second (the cache bounded at 64 MiB, so it evicts
# all along), the 50,000-record list purged and fetched again every minute, the live list purged
# every 5 s, Tencent's events delivered every second, 20 half-sent connections every 30 s, and
# faults injected in the simulator (a few 503s and garbage pages every 90 s, a 20-second outage
# every 5 minutes). Target: flat after warm-up.
# Usage: bench/soak.sh   (DURATION=1800; GATEWAY=<binary> instead of building this tree)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
duration=${DURATION:-1800}
key=bench-key-$RANDOM$RANDOM
token=bench-webhook-token-$RANDOM$RANDOM
gateway_port=$(port)
simulator_port=$(port)
WEMEET_WEBHOOK_TOKEN=$token "$gateway_bin" simulate --listen "127.0.0.1:$simulator_port" \
    --calls-per-minute 100000 --webhook-url "http://127.0.0.1:$gateway_port/webhooks/wemeet" \
    --events-every 1s >"$work/simulator.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$simulator_port/healthz"
WEMEET_API_BASE="http://127.0.0.1:$simulator_port" WEMEET_APP_ID=200000001 \
WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
WEMEET_OPERATOR_USERID=owner1 WEMEET_CALLS_PER_MINUTE=100000 \
GATEWAY_LISTEN="127.0.0.1:$gateway_port" WEMEET_WEBHOOK_TOKEN=$token \
GATEWAY_API_KEYS=$(printf %s "$key" | sha256sum | cut -d' ' -f1):1000000000 \
GATEWAY_CACHE_MAX_BYTES=64MiB RUST_LOG=warn \
    "$gateway_bin" serve >"$work/gateway.log" 2>&1 &
gateway=$!
pids+=($gateway)
wait_for "http://127.0.0.1:$gateway_port/healthz"
python3 bench/soak.py "http://127.0.0.1:$simulator_port" "http://127.0.0.1:$gateway_port" \
    "$key" "$gateway" "$duration" "${SOAK_CSV:-$work/soak.csv}"
