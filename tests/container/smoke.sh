#!/usr/bin/env bash
# The container, for real: build the image from the shipped Dockerfile, bring the compose stack
# up healthy (with the cluster profile: Redis, three replicas and nginx in front), fetch a demo
# meeting through the gateway container and compare it with what the simulator holds, ask one
# list of the replicas through the balancer many times and check that the upstream saw one pass,
# check that Prometheus (the monitoring profile) scrapes every gateway and the simulator, loads
# the alerting rules and answers every dashboard query, check that the process is not root, and
# tear the stack down gracefully.
#
# Needs root (or sudo) on a Debian machine; installs Debian's Docker engine, docker-compose,
# debootstrap and curl when missing, starts dockerd when none runs (and stops it at the end). The
# base images the Dockerfile names are pulled; where no registry is in reach, it makes stand-ins
# under those names for the build (debian:bookworm-slim with debootstrap, the Rust builder from
# this machine's own toolchain on top of it) and untags them at the end. Crates are vendored into
# a copy of the build context, and the image builds with --network=none.
#
# Skip it with CI_SKIP_CONTAINER=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${CI_SKIP_CONTAINER:-}" = 1 ]; then
    echo "container smoke test SKIPPED: CI_SKIP_CONTAINER=1"
    exit 0
fi

root=$([ "$(id -u)" = 0 ] || echo sudo)
docker() { $root "$(type -P docker)" "$@"; }
docker-compose() { $root "$(type -P docker-compose)" "$@"; }
started=$(date +%s)
stage=$started
lap() {
    local now
    now=$(date +%s)
    echo "container: $1 in $((now - stage)) s"
    stage=$now
}

project=wemeet-gateway-smoke
scratch=$(mktemp -d)
dockerd_pid=
stand_ins=()
cleanup() {
    docker-compose --project-name "$project" --profile cluster --profile monitoring down --volumes --timeout 5 >/dev/null 2>&1 || true
    for image in "${stand_ins[@]}"; do docker rmi "$image" >/dev/null 2>&1 || true; done
    if [ -n "$dockerd_pid" ]; then
        $root kill "$dockerd_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do $root kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    $root rm -rf "$scratch"
}
trap cleanup EXIT

# --- Docker engine, compose, debootstrap, curl
if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
    || ! command -v debootstrap >/dev/null || ! command -v curl >/dev/null; then
    $root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $root apt-get install -y -qq \
        docker.io docker-compose debootstrap curl >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
    $root dockerd >"$scratch/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || { cat "$scratch/dockerd.log"; exit 1; }
fi
lap "engine ready"

# --- Base images: pulled, or stand-ins made locally under the names the Dockerfile uses
rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' Dockerfile)
runtime_base=debian:bookworm-slim
builder_base=rust:${rust_version}-slim-bookworm
slim() { # what Debian's slim images leave out: documentation, translations, package caches
    $root rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* \
        "$1"/usr/share/locale/* "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* \
        "$1"/var/cache/debconf/*-old "$1"/var/log/*
}
present() { docker image inspect "$1" >/dev/null 2>&1 || docker pull --quiet "$1" >/dev/null 2>&1; }
if ! present "$runtime_base"; then
    stand_ins+=("$runtime_base")
    $root debootstrap --variant=minbase bookworm "$scratch/runtime" http://deb.debian.org/debian \
        >"$scratch/debootstrap.log" 2>&1 || { tail -20 "$scratch/debootstrap.log"; exit 1; }
    slim "$scratch/runtime"
    $root tar -C "$scratch/runtime" -c . | docker import - "$runtime_base" >/dev/null
    lap "made $runtime_base with debootstrap"
fi
if ! present "$builder_base"; then
    stand_ins+=("$builder_base")
    $root debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm \
        "$scratch/builder" http://deb.debian.org/debian \
        >"$scratch/debootstrap.log" 2>&1 || { tail -20 "$scratch/debootstrap.log"; exit 1; }
    slim "$scratch/builder"
    sysroot=$(rustc --print sysroot)
    $root mkdir -p "$scratch/builder/usr/local/bin" "$scratch/builder/usr/local/cargo"
    $root cp "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$scratch/builder/usr/local/bin/"
    $root cp -r "$sysroot/lib" "$scratch/builder/usr/local/"
    $root tar -C "$scratch/builder" -c . | docker import \
        --change 'ENV CARGO_HOME=/usr/local/cargo' \
        --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$builder_base" >/dev/null
    lap "made $builder_base from this machine's toolchain ($(rustc --version))"
fi

# The cluster profile's Redis and nginx, and the monitoring profile's Prometheus: pulled, or one
# Debian root with all three, made locally and tagged under each name (the compose file gives
# each its command).
redis_image=redis:7-bookworm
nginx_image=nginx:1-bookworm
prometheus_image=$(sed -n 's/^ *image: \(prom\/prometheus:.*\)/\1/p' docker-compose.yml)
if ! present "$redis_image" || ! present "$nginx_image" || ! present "$prometheus_image"; then
    $root debootstrap --variant=minbase --include=redis-server,nginx-light,prometheus bookworm \
        "$scratch/services" http://deb.debian.org/debian \
        >"$scratch/debootstrap.log" 2>&1 || { tail -20 "$scratch/debootstrap.log"; exit 1; }
    slim "$scratch/services"
    for image in "$redis_image" "$nginx_image" "$prometheus_image"; do
        present "$image" && continue
        stand_ins+=("$image")
        $root tar -C "$scratch/services" -c . | docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            - "$image" >/dev/null
    done
    lap "made $redis_image, $nginx_image and $prometheus_image with debootstrap"
fi

# --- The image, from the shipped Dockerfile, offline
context="$scratch/context"
mkdir -p "$context/.cargo"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$context"
(cd "$context" && cargo vendor --locked vendor >.cargo/config.toml 2>"$scratch/vendor.log") \
    || { cat "$scratch/vendor.log"; exit 1; }
lap "context with vendored crates ($(du -sh "$context" | cut -f1))"
docker build --quiet --network=none --tag wemeet-gateway:latest "$context" >/dev/null
size=$(docker image inspect --format '{{.Size}}' wemeet-gateway:latest)
lap "image built from the Dockerfile: $((size / 1000 / 1000)) MB"

# --- The compose stack
docker-compose --project-name "$project" --profile cluster up --detach --no-build --quiet-pull \
    2>"$scratch/up.log" || { cat "$scratch/up.log"; exit 1; }
gateway=$(docker-compose --project-name "$project" ps --quiet gateway)
simulator=$(docker-compose --project-name "$project" ps --quiet simulator)
health=starting
for _ in $(seq 1 60); do
    health=$(docker inspect --format '{{.State.Health.Status}}' "$gateway")
    [ "$health" = healthy ] && break
    sleep 1
done
if [ "$health" != healthy ]; then
    echo "the gateway container is $health:"
    docker-compose --project-name "$project" logs
    exit 1
fi
lap "stack up, gateway healthy"

# The live 1,234-record meeting through the gateway's published port, against the simulator's
# own records (read from its container address: the simulator publishes no port).
key=demo-compose-key-not-for-production
meeting=100000000000000001
curl --silent --show-error --fail -H "Authorization: Bearer $key" \
    "http://127.0.0.1:8080/meetings/$meeting/participants" >"$scratch/gateway.json"
simulator_ip=$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$simulator")
curl --silent --show-error --fail \
    "http://$simulator_ip:8081/_simulator/meetings/$meeting/records" >"$scratch/simulator.json"
python3 - "$scratch/gateway.json" "$scratch/simulator.json" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
stored = json.load(open(sys.argv[2]))
got = [(p["userid"], p["user_name_base64"], p["join_time"]) for p in answer["participants"]]
want = [(r.get("userid"), r.get("user_name"), int(r["join_time"])) for r in stored]
assert answer["complete"] is True, answer.get("incomplete_reason")
assert got == want, f"the gateway answered {len(got)} records, the simulator holds {len(want)}"
print(f"container: {len(got)} participants through the gateway, equal to the simulator's records")
PY
curl --silent --fail -o /dev/null http://127.0.0.1:8080/swagger-ui/

# The cluster: one list (a window of the live meeting, so that the gateway above did not fetch
# it) asked 60 times through the balancer, 20 at a time: the three replicas fetch it once.
for _ in $(seq 1 60); do
    curl --silent --fail -o /dev/null http://127.0.0.1:8090/healthz && break
    sleep 1
done
counters() {
    curl --silent --show-error --fail "http://$simulator_ip:8081/_simulator/counters" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["by_meeting"].get(sys.argv[1], 0))' "$meeting"
}
before=$(counters)
now=$(date +%s)
window="start_time=$((now - 86400))&end_time=$((now + 3600))"
seq 1 60 | xargs -P 20 -I{} curl --silent --show-error --fail -o "$scratch/cluster-{}.json" \
    -H "Authorization: Bearer $key" \
    "http://127.0.0.1:8090/meetings/$meeting/participants?$window"
calls=$(($(counters) - before))
distinct=$(md5sum "$scratch"/cluster-*.json | cut -d' ' -f1 | sort -u | wc -l)
echo "container: 60 requests through the balancer to 3 replicas: $calls upstream calls, $distinct distinct body"
if [ "$calls" != 13 ] || [ "$distinct" != 1 ]; then
    echo "the replicas did not share one fetch (13 calls, one body expected)"
    docker-compose --project-name "$project" logs gateway-1 gateway-2 gateway-3 | tail -40
    exit 1
fi

# Monitoring: Prometheus scrapes the gateway, the three replicas and the simulator, loads the
# alerting rules, and every query of the Grafana dashboard evaluates.
docker-compose --project-name "$project" --profile cluster --profile monitoring up --detach \
    --no-build prometheus 2>"$scratch/up.log" || { cat "$scratch/up.log"; exit 1; }
prometheus_ip=$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
    "$(docker-compose --project-name "$project" ps --quiet prometheus)")
python3 - "$prometheus_ip" deploy/prometheus/alerts.yml deploy/grafana/dashboards/wemeet-gateway.json <<'PY'
import json, sys, time, urllib.parse, urllib.request
base = f"http://{sys.argv[1]}:9090/api/v1"
def get(path, **query):
    return json.load(urllib.request.urlopen(f"{base}/{path}?" + urllib.parse.urlencode(query)))
up = None
for _ in range(60):
    try:
        result = get("query", query="sum by (job) (up)")["data"]["result"]
        up = {r["metric"]["job"]: r["value"][1] for r in result}
        if up == {"wemeet-gateway": "4", "simulator": "1"}:
            break
    except OSError:
        pass
    time.sleep(1)
else:
    sys.exit(f"Prometheus did not scrape the four gateways and the simulator (up: {up})")
rules = sum(len(g["rules"]) for g in get("rules")["data"]["groups"])
want = sum(1 for line in open(sys.argv[2]) if line.startswith("      - alert: "))
assert rules == want, f"Prometheus loaded {rules} alerting rules of {want}"
dashboard = json.load(open(sys.argv[3]))
queries = [t["expr"].replace("$__rate_interval", "1m") for p in dashboard["panels"] for t in p["targets"]]
for query in queries:
    answer = get("query", query=query)
    assert answer["status"] == "success", (query, answer)
served = get("query", query='sum(gateway_http_requests_total{route="/meetings/{meeting_id}/participants"})')
assert served["data"]["result"], "Prometheus holds no counted request"
print(f"container: Prometheus scrapes 4 gateways and the simulator, loaded {rules} alerting rules, "
      f"and evaluated the dashboard's {len(queries)} queries")
PY
lap "monitoring checked"

# Not root: the configured user, and the uid the processes really run as.
user=$(docker inspect --format '{{.Config.User}}' "$gateway")
uids=$(docker top "$gateway" -o pid,uid | awk 'NR > 1 { print $2 }' | sort -u | tr '\n' ' ')
case "$user" in "" | 0 | 0:* | root | root:*)
    echo "the image runs as root ($user)"; exit 1 ;;
esac
for uid in $uids; do
    [ "$uid" != 0 ] || { echo "a process in the gateway container runs as root"; exit 1; }
done
echo "container: runs as user $user (process uids: $uids)"

# Graceful shutdown: both services stop on SIGTERM well before compose would kill them.
down_started=$(date +%s%N)
docker-compose --project-name "$project" --profile cluster --profile monitoring down --timeout 10 2>/dev/null
down_ms=$((($(date +%s%N) - down_started) / 1000000))
echo "container: docker-compose down took $down_ms ms"
if [ "$down_ms" -gt 8000 ]; then
    echo "the services did not stop promptly on SIGTERM"
    exit 1
fi
lap "checked and torn down"
echo "container: smoke test passed in $(($(date +%s) - started)) s"
