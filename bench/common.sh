# Shared by the benchmark scripts, which source it from the repository's root: the build under
# test (GATEWAY=<binary>, else this tree built for release), a scratch folder removed on exit
# with every process started, free ports, waiting for a server, the release simulator, and the
# gateway in front of it.

gateway_bin=${GATEWAY:-target/release/wemeet-gateway}
[ -n "${GATEWAY:-}" ] || cargo build --release --quiet
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until a URL answers (at most TRIES tenths of a second, default 100).
wait_for() {
    for _ in $(seq 1 "${2:-100}"); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "not up: $1"
    exit 1
}

# Starts the simulator with the given extra options on a free port: $upstream_port.
start_simulator() {
    upstream_port=$(port)
    "$gateway_bin" simulate --listen "127.0.0.1:$upstream_port" "$@" >"$work/simulator.log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$upstream_port/healthz"
}

# Starts the gateway under test against the simulator, on a free port ($gateway_port, its process
# $gateway_pid), with an API key ($key, made here unless set) and the upstream quota, deadlines
# and in-flight cap out of the way. Arguments are more of its environment, as NAME=value.
start_gateway() {
    key=${key:-bench-key-$RANDOM$RANDOM}
    gateway_port=$(port)
    env WEMEET_API_BASE="http://127.0.0.1:$upstream_port" WEMEET_APP_ID=200000001 \
        WEMEET_SECRET_ID=AKIDdemoSecretId WEMEET_SECRET_KEY=demo-secret-key-not-for-production \
        WEMEET_OPERATOR_USERID=owner1 GATEWAY_LISTEN="127.0.0.1:$gateway_port" \
        WEMEET_CALLS_PER_MINUTE=4000000000 GATEWAY_FETCH_WAIT=120s GATEWAY_REQUEST_TIMEOUT=300s \
        GATEWAY_API_KEYS="$(printf %s "$key" | sha256sum | cut -d' ' -f1):1000000000" \
        GATEWAY_MAX_IN_FLIGHT=100000 RUST_LOG=warn "$@" \
        "$gateway_bin" serve >"$work/gateway.log" 2>&1 &
    gateway_pid=$!
    pids+=("$gateway_pid")
    wait_for "http://127.0.0.1:$gateway_port/healthz"
}
