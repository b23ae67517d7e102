#!/usr/bin/env bash
# A live 1,234-record meeting for SECONDS (default 600), 20 clients polling it every 2 s, one
# join or leave every 2 s: first with Tencent's events delivered to the gateway, then the same
# without them (the gateway relies on its 30-second freshness), each against its own release
# simulator and gateway (bench/live_events.py measures). Target: with events, at most a fifth of
# the upstream calls, and every change visible to the pollers within 2 s.
# Usage: bench/live_events.sh   (SECONDS_EACH=600; GATEWAY=<binary> instead of building this tree)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
seconds=${SECONDS_EACH:-600}
key=bench-key-$RANDOM$RANDOM
token=bench-webhook-token-$RANDOM$RANDOM
run() { # label, then "events" or "none"
    local gateway_port simulator_port url
    gateway_port=$(port)
    simulator_port=$(port)
    if [ "$2" = events ]; then
        url="http://127.0.0.1:$gateway_port/webhooks/wemeet"
    else
        url="http://127.0.0.1:$(port)/nobody-listens" # the list changes; the gateway is not told
    fi
    WEMEET_WEBHOOK_TOKEN=$token "$gateway_bin" simulate --listen "127.0.0.1:$simulator_port" \
        --calls-per-minute 100000 --webhook-url "$url" --events-every 2s \
        >"$work/simulator-$2.log" 2>&1 &
    local simulator=$!
    pids+=($simulator)
    wait_for "http://127.0.0.1:$simulator_port/healthz"
    WEMEET_API_BASE="http://127.0.0.1:$simulator_port" WEMEET_APP_ID=200000001 \
    WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
    WEMEET_OPERATOR_USERID=owner1 GATEWAY_LISTEN="127.0.0.1:$gateway_port" \
    WEMEET_WEBHOOK_TOKEN=$token \
    GATEWAY_API_KEYS=$(printf %s "$key" | sha256sum | cut -d' ' -f1):1000000000 GATEWAY_MAX_IN_FLIGHT=100000 RUST_LOG=warn \
        "$gateway_bin" serve >"$work/gateway-$2.log" 2>&1 &
    local gateway=$!
    pids+=($gateway)
    wait_for "http://127.0.0.1:$gateway_port/healthz"
    python3 bench/live_events.py "http://127.0.0.1:$simulator_port" \
        "http://127.0.0.1:$gateway_port" "$key" "$seconds" "$1"
    kill "$gateway" "$simulator"
}
echo "$(nproc) cores; the live demo meeting (1,234 records), someone joins or leaves every 2 s"
run "with events   " events
run "without events" none
