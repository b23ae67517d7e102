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
start_gateway
echo "$(nproc) cores; the 60,000-record demo meeting (the upstream serves 50,000)"
python3 bench/cold_list.py "http://127.0.0.1:$upstream_port" "http://127.0.0.1:$gateway_port" \
    "$gateway_pid" "$key" "${ROUNDS:-5}"
