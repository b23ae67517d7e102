#!/usr/bin/env bash
# Client cost per page and time for 50,000 records: ours beside Tencent's official Python SDK,
# in one run, against the same zero-latency simulator (release build, quotas out of the way).
# Needs: pip install wemeet-openapi-sdk-python==1.0.10 requests-toolbelt
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-10}
cargo build --release --quiet
cargo bench --no-run --quiet --bench upstream_fetch 2>/dev/null
log=$(mktemp)
target/release/wemeet-gateway simulate --listen 127.0.0.1:0 \
    --calls-per-minute 4000000000 --calls-per-day 4000000000 >"$log" 2>&1 &
simulator=$!
trap 'kill "$simulator" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do grep -q '^simulated' "$log" && break; sleep 0.1; done
base=$(sed -n 's/^simulated Tencent Meeting API on \(http[^ ]*\) .*/\1/p' "$log")
echo "machine: $(nproc) cores, $(uname -r); simulator at $base"
cargo bench --quiet --bench upstream_fetch -- "$base" "$rounds"
python3 bench/sdk_loop.py "$base" "${SDK_ROUNDS:-3}"
