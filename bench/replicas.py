"""Three replicas sharing one Redis: 1,000 callers for one cold list spread over them, an L2
hit's latency beside an L1 hit's, and Redis commands per L1 hit. Started by bench/replicas.sh.

Usage: python3 bench/replicas.py SIMULATOR_URL REDIS_PORT KEY GATEWAY_URL...
"""

import http.client
import json
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

LIVE = "/meetings/100000000000000001/participants"


def get(url, path, key):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    body = response.read()
    status = response.getheader("cache-status", "")
    conn.close()
    return response.status, body, status


def upstream_calls(simulator):
    conn = http.client.HTTPConnection(simulator.hostname, simulator.port)
    conn.request("GET", "/_simulator/counters")
    calls = json.loads(conn.getresponse().read())["calls"]
    conn.close()
    return calls


def redis_commands(port):
    """Commands Redis has processed so far (the INFO asking counts itself once)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"INFO stats\r\n")
        data = b""
        while b"total_commands_processed" not in data or not data.endswith(b"\r\n"):
            data += s.recv(65536)
    for line in data.decode().splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":")[1])
    raise RuntimeError("no total_commands_processed in INFO")


def timed(url, path, key, expect):
    started = time.perf_counter()
    status, _, cache_status = get(url, path, key)
    elapsed = time.perf_counter() - started
    assert status == 200 and expect in cache_status, (status, cache_status)
    return elapsed


def main():
    simulator, redis_port, key = urlparse(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    gateways = [urlparse(u) for u in sys.argv[4:]]

    # 1,000 callers, one cold 1,234-record list, round robin over the replicas, 200 at a time.
    before = upstream_calls(simulator)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=200) as pool:
        answers = list(pool.map(lambda i: get(gateways[i % len(gateways)], LIVE, key), range(1000)))
    elapsed = time.perf_counter() - started
    assert all(status == 200 for status, _, _ in answers), {s for s, _, _ in answers}
    bodies = {body for _, body, _ in answers}
    print(f"1,000 callers over {len(gateways)} replicas, one cold 1,234-record list: "
          f"{elapsed * 1e3:.0f} ms, {upstream_calls(simulator) - before} upstream calls "
          f"(13 is one pass), {len(bodies)} distinct body")

    # L2 against L1: lists fetched by the first replica, then read by the second twice (the
    # first read finds it in Redis only, the second in its own memory).
    now = int(time.time())
    lists = [f"{LIVE}?start_time={now - 86400 - i}&end_time={now + 3600}" for i in range(1, 41)]
    for path in lists:
        assert get(gateways[0], path, key)[0] == 200
    l2 = [timed(gateways[1], path, key, "fwd=miss") for path in lists]
    l1 = [timed(gateways[1], path, key, "; hit") for path in lists]
    print(f"second replica, {len(lists)} lists of 1,234 records (JSON): L2 hit median "
          f"{statistics.median(l2) * 1e3:.2f} ms (p90 {sorted(l2)[int(len(l2) * 0.9)] * 1e3:.2f}), "
          f"L1 hit median {statistics.median(l1) * 1e3:.2f} ms "
          f"(p90 {sorted(l1)[int(len(l1) * 0.9)] * 1e3:.2f})")

    # Redis commands per L1 hit (target: none).
    hits = 1000
    before = redis_commands(redis_port)
    conn = http.client.HTTPConnection(gateways[2].hostname, gateways[2].port)
    for _ in range(hits):
        conn.request("GET", LIVE, headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        assert "; hit" in response.getheader("cache-status", "")
    conn.close()
    during = redis_commands(redis_port) - before - 1
    print(f"Redis commands during {hits} L1 hits: {during} ({during / hits:.3f} a hit; the "
          f"replicas' background work, such as lock renewals, counts too)")


if __name__ == "__main__":
    main()
