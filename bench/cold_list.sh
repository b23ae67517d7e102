#!/usr/bin/env bash
# A cold 50,000-record list through the gateway, plain and gzip, against Tencent's official
# Python SDK fetching the same list in a plain paging loop, alternating in one run, from one
# release simulator with its quotas out of the way (bench/cold_list.py does the measuring).
# Needs: pip install wemeet-openapi-sdk-python==1.0.10 requests-toolbelt
# Usage: bench/cold_list.sh   (ROUNDS=5; GATEWAY=<binary> instead of building this tree)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
start_simulator --calls-per-minute 4000000000 --calls-per-day 4000000000
key=bench-key-$RANDOM$RANDOM
gateway_port=$(port)
WEMEET_API_BASE="http://127.0.0.1:$upstream_port" WEMEET_APP_ID=200000001 \
WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
WEMEET_OPERATOR_USERID=owner1 GATEWAY_LISTEN="127.0.0.1:$gateway_port" \
WEMEET_CALLS_PER_MINUTE=4000000000 GATEWAY_FETCH_WAIT=120s GATEWAY_REQUEST_TIMEOUT=300s \
GATEWAY_API_KEYS=$(printf %s "$key" | sha256sum | cut -d' ' -f1):1000000000 GATEWAY_MAX_IN_FLIGHT=100000 RUST_LOG=warn \
    "$gateway_bin" serve >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
wait_for "http://127.0.0.1:$gateway_port/healthz"
echo "$(nproc) cores; the 60,000-record demo meeting (the upstream serves 50,000)"
python3 bench/cold_list.py "http://127.0.0.1:$upstream_port" "http://127.0.0.1:$gateway_port" \
    "$gateway_pid" "$key" "${ROUNDS:-5}"
