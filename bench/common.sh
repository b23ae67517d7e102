# Shared by the benchmark scripts, which source it from the repository's root: the build under
# test (GATEWAY=<binary>, else this tree built for release), a scratch folder removed on exit
# with every process started, free ports, waiting for a server, and the release simulator.

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
