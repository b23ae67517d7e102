#!/usr/bin/env bash
# Cache-hit throughput and latency: the gateway serving lists from its cache, side by side with
# nginx serving the same bytes from a file, same load tool (wrk), same connections, alternating
# runs in one session. Release builds, loopback only. Three bodies:
#   small  the API page's sample meeting (2 records)
#   json   the 1,234-record meeting, uncompressed (a client that does not accept gzip)
#   gzip   the same list gzipped (what browsers get: they all send Accept-Encoding: gzip)
# nginx serves the gzipped body twice: with sendfile (its default on Debian, no copy of the body
# into the socket) and, as "gzip-copy", with sendfile off, so that it copies the body as the
# gateway must; the second comparison isolates the per-request work from that copy.
# "hyper" is the floor under any hyper-based server: hyper alone, no router or middleware,
# answering every request with the same bytes (bench/hyper_floor.rs, built as an example).
# Beside each rate, the CPU the server spent per request (user and kernel time together, from
# /proc, all of nginx's workers together; this machine's split between the two is not to be
# trusted): wrk shares the two cores with the server, so the rate also moves with what wrk and
# the rest of the machine take.
#
# Usage: bench/cache_hits.sh   (CONNECTIONS=64 DURATION=10s ROUNDS=3; needs wrk and nginx:
#        apt-get install wrk nginx-light)
# A/B:   BASELINE=path/to/another/wemeet-gateway bench/cache_hits.sh also runs that build as a
#        second gateway against the same simulator, loaded right before this one each time
#        ("baseline" lines), so that a change is measured against the code it replaced in one run.
#        GATEWAY=path/to/wemeet-gateway uses that build instead of building this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${CONNECTIONS:-64}
duration=${DURATION:-10s}
rounds=${ROUNDS:-3}
for tool in wrk nginx; do
    command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install wrk nginx-light"; exit 1; }
done
. bench/common.sh
cargo build --release --quiet --example hyper_floor
chmod 755 "$work"   # nginx workers run unprivileged and must read the file
start_simulator --calls-per-minute 100000
key=bench-key-$RANDOM$RANDOM
start_gateway() { # binary port log
    WEMEET_API_BASE="http://127.0.0.1:$upstream_port" WEMEET_APP_ID=200000001 \
    WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
    WEMEET_OPERATOR_USERID=owner1 GATEWAY_LISTEN="127.0.0.1:$2" \
    GATEWAY_API_KEYS=$(printf %s "$key" | sha256sum | cut -d' ' -f1):1000000000 GATEWAY_MAX_IN_FLIGHT=100000 RUST_LOG=warn \
        "$1" serve >"$3" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$2/healthz"
}
gateway_port=$(port)
start_gateway "$gateway_bin" "$gateway_port" "$work/gateway.log"
gateway_pid=${pids[-1]}
if [ -n "${BASELINE:-}" ]; then
    baseline_port=$(port)
    start_gateway "$BASELINE" "$baseline_port" "$work/baseline.log"
    baseline_pid=${pids[-1]}
fi

nginx_port=$(port)
cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16;
    keepalive_requests 1000000;
    default_type application/json;
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/root;
        location /gzip/ { add_header Content-Encoding gzip; add_header Vary Accept-Encoding; }
        location /gzip-copy/ {
            alias $work/root/gzip/;
            sendfile off;
            add_header Content-Encoding gzip; add_header Vary Accept-Encoding;
        }
    }
}
CONF
# The bodies the gateway serves (each fetched once: the only misses), as nginx's files.
auth="Authorization: Bearer $key"
small=/meetings/144115214488302892/participants
list=/meetings/100000000000000001/participants
mkdir -p "$work/root/small" "$work/root/json" "$work/root/gzip"
curl -fs -H "$auth" "http://127.0.0.1:$gateway_port$small" -o "$work/root/small/body"
curl -fs -H "$auth" "http://127.0.0.1:$gateway_port$list" -o "$work/root/json/body"
curl -fs -H "$auth" -H "Accept-Encoding: gzip" "http://127.0.0.1:$gateway_port$list" -o "$work/root/gzip/body"
nginx -c "$work/nginx.conf"
declare -A floor_port floor_pid
for kind in small json gzip; do
    floor_port[$kind]=$(port)
    target/release/examples/hyper_floor "${floor_port[$kind]}" "$work/root/$kind/body" \
        "$([ "$kind" = gzip ] && echo gzip)" &
    pids+=($!)
    floor_pid[$kind]=$!
    wait_for "http://127.0.0.1:${floor_port[$kind]}/"
done
wait_for "http://127.0.0.1:$nginx_port/small/body"
for kind in small json gzip; do
    path=$small; [ "$kind" = small ] || path=$list
    header=""; [ "$kind" = gzip ] && header="Accept-Encoding: gzip"
    cmp -s <(curl -fs ${header:+-H "$header"} "http://127.0.0.1:$nginx_port/$kind/body") \
           <(curl -fs -H "$auth" ${header:+-H "$header"} "http://127.0.0.1:$gateway_port$path") \
        || { echo "nginx and the gateway serve different bytes for $kind"; exit 1; }
    echo "$kind body: $(stat -c %s "$work/root/$kind/body") bytes"
done
cmp -s <(curl -fs "http://127.0.0.1:$nginx_port/gzip-copy/body") "$work/root/gzip/body" \
    || { echo "nginx's gzip-copy location serves different bytes"; exit 1; }
if [ -n "${BASELINE:-}" ]; then
    # The same documents; the gzip form may differ in its bytes (another level or backend).
    for kind in small json; do
        path=$small; [ "$kind" = small ] || path=$list
        cmp -s <(curl -fs -H "$auth" "http://127.0.0.1:$baseline_port$path") "$work/root/$kind/body" \
            || { echo "the baseline serves a different $kind body"; exit 1; }
    done
    cmp -s <(curl -fs --compressed -H "$auth" "http://127.0.0.1:$baseline_port$list") "$work/root/json/body" \
        || { echo "the baseline's gzip body is not the same list"; exit 1; }
    echo "baseline gzip body: $(curl -fs -H "$auth" -H "Accept-Encoding: gzip" "http://127.0.0.1:$baseline_port$list" | wc -c) bytes"
fi
echo "$(nproc) cores; wrk -t2 -c$connections -d$duration --latency"

# Clock ticks of user and kernel time the given processes have spent: "user system".
cpu_ticks() {
    local pid u s user=0 system=0
    for pid in "$@"; do
        read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
        user=$((user + u)) system=$((system + s))
    done
    echo "$user $system"
}
tick=$(getconf CLK_TCK)

run() { # name "server pids" url [header] [header]
    local out u0 s0 u1 s1
    read -r u0 s0 < <(cpu_ticks $2)
    out=$(wrk -t2 -c"$connections" -d"$duration" --latency ${4:+-H "$4"} ${5:+-H "$5"} "$3")
    read -r u1 s1 < <(cpu_ticks $2)
    local rps p50 p99 requests
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    requests=$(awk '/ requests in / {print $1}' <<<"$out")
    printf '%-14s %10s req/s   p50 %-9s p99 %-9s CPU %s us/req\n' "$1" "$rps" "$p50" "$p99" \
        "$(awk -v t=$((u1 - u0 + s1 - s0)) -v n="$requests" -v hz="$tick" 'BEGIN {printf "%.1f", t / hz / n * 1e6}')"
}
nginx_workers=$(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')
for round in $(seq 1 "$rounds"); do
    echo "round $round"
    for kind in small json gzip; do
        path=$small; [ "$kind" = small ] || path=$list
        header=""; [ "$kind" = gzip ] && header="Accept-Encoding: gzip"
        run "nginx $kind" "$nginx_workers" "http://127.0.0.1:$nginx_port/$kind/body" "$header"
        if [ "$kind" = gzip ]; then
            run "nginx gzip-copy" "$nginx_workers" "http://127.0.0.1:$nginx_port/gzip-copy/body" "$header"
        fi
        run "hyper $kind" "${floor_pid[$kind]}" "http://127.0.0.1:${floor_port[$kind]}/" "$header"
        if [ -n "${BASELINE:-}" ]; then
            run "baseline $kind" "$baseline_pid" "http://127.0.0.1:$baseline_port$path" "$auth" "$header"
        fi
        run "gateway $kind" "$gateway_pid" "http://127.0.0.1:$gateway_port$path" "$auth" "$header"
    done
done
calls=$(curl -fs "http://127.0.0.1:$upstream_port/_simulator/counters" | python3 -c 'import json,sys; print(json.load(sys.stdin)["calls"])')
echo "upstream calls during the whole run: $calls (14 for the first fetches; the live meeting's list"
echo "is fresh for 30 s, so each refresh after that adds 13, the sample meeting's for an hour)"
