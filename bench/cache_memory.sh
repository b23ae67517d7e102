#!/usr/bin/env bash
# Memory: fill the cache to three times its byte bound with distinct lists, then compare the
# bound with what the cache says it holds and with the process's resident memory.
# Each key is the 1,234-record live meeting with its own time window (a distinct list).
#
# Usage: bench/cache_memory.sh   (BOUND=64MiB KEYS=240; GATEWAY=<binary> instead of building this
#        tree)
set -euo pipefail
cd "$(dirname "$0")/.."
bound=${BOUND:-64MiB}
keys=${KEYS:-240}
. bench/common.sh
start_simulator --calls-per-minute 4000000000
gateway_port=$(port)
WEMEET_API_BASE="http://127.0.0.1:$upstream_port" WEMEET_APP_ID=200000001 \
WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
WEMEET_OPERATOR_USERID=owner1 WEMEET_CALLS_PER_MINUTE=4000000000 \
GATEWAY_LISTEN="127.0.0.1:$gateway_port" GATEWAY_ALLOW_ANONYMOUS=true GATEWAY_RATE_LIMIT=0 \
GATEWAY_CACHE_MAX_BYTES="$bound" RUST_LOG=warn \
    "$gateway_bin" serve >"$work/gateway.log" 2>&1 &
gateway=$!
pids+=($gateway)
base="http://127.0.0.1:$gateway_port"
wait_for "$base/healthz"
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$gateway/status"; }
metric() { curl -fs "$base/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
list=/meetings/100000000000000001/participants
curl -fs "$base$list" -o /dev/null            # one list, to count the runtime's own memory
baseline=$(rss)
now=$(date +%s)
started=$(date +%s.%N)
for i in $(seq 1 "$keys"); do
    curl -fs -o /dev/null "$base$list?start_time=$((now - 7200 - i))&end_time=$now"
done
elapsed=$(python3 -c "import time; print('%.1f' % (time.time() - $started))")
after=$(rss)
held=$(metric gateway_cache_bytes)
entries=$(metric gateway_cache_entries)
bound_bytes=$(python3 -c "import sys; v='$bound'; u={'KiB':1024,'MiB':1024**2,'GiB':1024**3}; print(next((int(v[:-3])*m for k,m in u.items() if v.endswith(k)), None) or int(v))")
python3 - "$bound_bytes" "$held" "$entries" "$baseline" "$after" "$keys" "$elapsed" <<'PY'
import sys
bound, held, entries, baseline, after, keys, elapsed = sys.argv[1:]
bound, held, entries, baseline, after, keys = int(bound), float(held), float(entries), int(baseline), int(after), int(keys)
mib = 1024 * 1024
print(f"{keys} distinct 1,234-record lists fetched in {elapsed} s; cache bound {bound / mib:.0f} MiB")
print(f"cache holds {entries:.0f} lists, {held / mib:.1f} MiB (bound respected: {held <= bound})")
print(f"per cached record: {held / (entries * 1234):.0f} bytes (JSON + gzip + entry overhead)")
print(f"resident memory: {baseline / mib:.1f} MiB with one list, {after / mib:.1f} MiB full")
print(f"resident memory above the bound: {(after - bound) / mib:.1f} MiB")
PY
