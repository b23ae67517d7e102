#!/usr/bin/env bash
# Three replicas sharing one Redis, against the release simulator with its quotas out of the
# way: 1,000 callers for one cold list spread over them (time, upstream calls), an L2 hit's
# latency beside an L1 hit's, and Redis commands per L1 hit (bench/replicas.py measures).
# Needs redis-server (apt-get install redis-server).
# Usage: bench/replicas.sh   (GATEWAY=<binary> instead of building this tree)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "needs redis-server: apt-get install redis-server"; exit 1; }
. bench/common.sh
start_simulator --calls-per-minute 4000000000 --calls-per-day 4000000000
redis_port=$(port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
key=bench-key-$RANDOM$RANDOM
urls=()
for replica in 1 2 3; do
    gateway_port=$(port)
    WEMEET_API_BASE="http://127.0.0.1:$upstream_port" WEMEET_APP_ID=200000001 \
    WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
    WEMEET_OPERATOR_USERID=owner1 GATEWAY_LISTEN="127.0.0.1:$gateway_port" \
    WEMEET_CALLS_PER_MINUTE=4000000000 GATEWAY_CACHE_TTL_LIVE=1h \
    GATEWAY_REDIS_URL="redis://127.0.0.1:$redis_port" \
    GATEWAY_API_KEYS=$(printf %s "$key" | sha256sum | cut -d' ' -f1):1000000000 GATEWAY_MAX_IN_FLIGHT=100000 RUST_LOG=warn \
        "$gateway_bin" serve >"$work/gateway-$replica.log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$gateway_port/healthz"
    urls+=("http://127.0.0.1:$gateway_port")
done
echo "$(nproc) cores; three replicas, one Redis ($(redis-server --version | cut -d' ' -f3)), one simulator"
python3 bench/replicas.py "http://127.0.0.1:$upstream_port" "$redis_port" "$key" "${urls[@]}"
