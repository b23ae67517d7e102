#!/usr/bin/env bash
# CPU instructions per cache hit, counted by callgrind: the same count for the same binary and
# requests whatever else the machine is doing, where requests per second (cache_hits.sh) move by
# a fifth from run to run. The gateway runs under valgrind against the release simulator, with
# instrumentation off while it starts and fetches, and the live list kept fresh for the whole run
# so that no refresh is counted. Each body is fetched once (the miss); then instrumentation is
# switched on, HITS requests are sent one after another on one keep-alive connection, and the
# process's user-space instructions (every thread; the kernel's work is not counted) are divided
# by HITS. With BASELINE=<binary> the same is done for another build, alternating, ROUNDS times,
# so that a change is compared with the code it replaced.
#
# Usage: bench/hit_instructions.sh   (HITS=2000 ROUNDS=2; GATEWAY=<binary> instead of building
#        this tree; BASELINE=<binary>; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
hits=${HITS:-2000}
rounds=${ROUNDS:-2}
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind"; exit 1; }
. bench/common.sh
start_simulator --calls-per-minute 100000
key=bench-key-$RANDOM$RANDOM

# Sends $hits GETs of one path on one connection, checking each is a 200 hit.
cat >"$work/client.py" <<'PY'
import http.client, sys
port, path, key, hits, gzip = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "gzip"
headers = {"Authorization": f"Bearer {key}"}
if gzip:
    headers["Accept-Encoding"] = "gzip"
conn = http.client.HTTPConnection("127.0.0.1", int(port))
for _ in range(hits):
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    status = response.getheader("cache-status", "")
    assert response.status == 200 and status.startswith("wemeet-gateway; hit;"), (response.status, status)
PY

measure() { # binary -> prints "small json gzip" instructions per hit
    local bin=$1 gateway_port out
    gateway_port=$(port)
    out="$work/callgrind.out"
    rm -f "$out"*
    WEMEET_API_BASE="http://127.0.0.1:$upstream_port" WEMEET_APP_ID=200000001 \
    WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
    WEMEET_OPERATOR_USERID=owner1 GATEWAY_LISTEN="127.0.0.1:$gateway_port" \
    GATEWAY_API_KEYS=$(printf %s "$key" | sha256sum | cut -d' ' -f1):1000000000 GATEWAY_MAX_IN_FLIGHT=100000 RUST_LOG=warn \
    GATEWAY_CACHE_TTL_LIVE=1h \
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$bin" serve >"$work/gateway.log" 2>&1 &
    local pid=$!
    pids+=($pid)
    wait_for "http://127.0.0.1:$gateway_port/healthz" 600 # valgrind starts slowly
    local results=()
    for kind in small json gzip; do
        local path=/meetings/144115214488302892/participants
        [ "$kind" = small ] || path=/meetings/100000000000000001/participants
        # The miss, then a few hits, uninstrumented.
        curl -fs -o /dev/null -H "Authorization: Bearer $key" "http://127.0.0.1:$gateway_port$path"
        python3 "$work/client.py" "$gateway_port" "$path" "$key" 20 "$kind"
        callgrind_control -i on "$pid" >/dev/null 2>&1
        python3 "$work/client.py" "$gateway_port" "$path" "$key" "$hits" "$kind"
        callgrind_control -i off "$pid" >/dev/null 2>&1
        callgrind_control -d "$pid" >/dev/null 2>&1
        callgrind_control -z "$pid" >/dev/null 2>&1
        local total
        total=$(cat "$out".* 2>/dev/null | awk '/^totals:/ {s += $2} END {print s+0}')
        rm -f "$out".*
        results+=("$(( total / hits ))")
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "${results[*]}"
}

echo "instructions per hit ($hits hits each, one connection, sequential): small json gzip"
for round in $(seq 1 "$rounds"); do
    if [ -n "${BASELINE:-}" ]; then
        echo "round $round baseline: $(measure "$BASELINE")"
    fi
    echo "round $round gateway:  $(measure "$gateway_bin")"
done
