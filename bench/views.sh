#!/usr/bin/env bash
# Views of a cached list (bench/README.md, "Views"): for the 50,000-record list, how long the
# first request for each view takes (the view made from the cached list, on the gateway's blocking
# pool), then how long the first request for the gzip form of a kept rendering takes (the gzip
# made), and the gateway's memory before and after; then requests per second of a view served
# from its kept rendering against the list itself, on the 1,234-record live list, alternating in
# one run with the same wrk settings. Release builds, loopback only.
#
# Usage: bench/views.sh   (ROUNDS=5 CONNECTIONS=64 DURATION=5s; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
connections=${CONNECTIONS:-64}
duration=${DURATION:-5s}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk"; exit 1; }
. bench/common.sh
start_simulator --calls-per-minute 100000
start_gateway
gateway=$gateway_pid
base="http://127.0.0.1:$gateway_port"
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$gateway/status"; }
# Seconds for one GET (the body read and thrown away).
timed() { curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $key" "$@"; }

huge="$base/meetings/100000000000000002"
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$huge/participants")" = 200 ]; do
    sleep 0.5
done
echo "$(nproc) cores; the 50,000-record list cached; gateway RSS $(rss) MiB"
zones=(Asia/Shanghai UTC Europe/Berlin America/New_York Asia/Kolkata Asia/Tokyo Europe/London)
declare -A times
for round in $(seq 1 "$rounds"); do
    # Each round a new version of the list: every view is made again. A rendering is kept by the
    # list's ETag and the second it was fetched in, so the rounds are a second apart.
    sleep 1.1
    curl -fsS -o /dev/null -X DELETE -H "Authorization: Bearer $key" "$huge/participants/cache"
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$huge/participants")" = 200 ]; do
        sleep 0.5
    done
    zone=${zones[$(( (round - 1) % ${#zones[@]} ))]}
    times[attendance]+="$(timed "$huge/attendance") "
    times[attendance_repeat]+="$(timed "$huge/attendance") "
    # The gzip form of a kept rendering: made on the first request that accepts it.
    times[attendance_gzip]+="$(timed -H 'Accept-Encoding: gzip' "$huge/attendance") "
    times[attendance_csv]+="$(timed "$huge/attendance?format=csv&tz=$zone") "
    times[participants_csv]+="$(timed "$huge/participants?format=csv&tz=$zone") "
    times[participants_csv_gzip]+="$(timed -H 'Accept-Encoding: gzip' "$huge/participants?format=csv&tz=$zone") "
    times[still_in]+="$(timed "$huge/participants?still_in=true") "
    times[participants_hit]+="$(timed "$huge/participants") "
done
for view in attendance attendance_repeat attendance_gzip attendance_csv participants_csv \
    participants_csv_gzip still_in participants_hit; do
    python3 - "$view" ${times[$view]} <<'PY'
import statistics, sys
name, values = sys.argv[1], [float(v) * 1e3 for v in sys.argv[2:]]
print(f"{name:18} first request: median {statistics.median(values):6.1f} ms, "
      f"min {min(values):6.1f}, max {max(values):6.1f} (n={len(values)})")
PY
done
echo "gateway RSS after: $(rss) MiB"
sizes() { curl -fsS -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $key" "$@"; }
echo "bodies: list $(sizes "$huge/participants") B, attendance $(sizes "$huge/attendance") B," \
    "attendance CSV $(sizes "$huge/attendance?format=csv") B, list CSV $(sizes "$huge/participants?format=csv") B"

live="$base/meetings/100000000000000001"
curl -fsS -o /dev/null -H "Authorization: Bearer $key" "$live/participants"
load() { # label url
    local rps
    rps=$(wrk -t2 -c"$connections" -d"$duration" -H "Authorization: Bearer $key" \
        -H 'Accept-Encoding: gzip' "$2" | awk '/Requests\/sec/ {print $2}')
    printf '%-22s %10s req/s\n' "$1" "$rps"
}
echo "1,234-record live list, gzip accepted, wrk -c$connections -d$duration:"
for _ in 1 2; do
    load "participants (list)" "$live/participants"
    load "attendance (kept)" "$live/attendance"
    load "attendance CSV (kept)" "$live/attendance?format=csv"
    load "participants CSV (kept)" "$live/participants?format=csv"
done
