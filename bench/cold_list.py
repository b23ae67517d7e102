"""A cold 50,000-record list through the gateway (DELETE its cache, then one GET, plain and
gzip), alternating with the same list fetched by Tencent's official Python SDK in a plain paging
loop, from the same simulator. Started by bench/cold_list.sh.

Usage: python3 bench/cold_list.py SIMULATOR_URL GATEWAY_URL GATEWAY_PID API_KEY [ROUNDS]
"""

import http.client
import os
import statistics
import sys
import time
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(__file__))
import sdk_loop  # noqa: E402

MEETING = sdk_loop.MEETING
TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid):
    """Seconds of CPU the process has used, every thread, living or ended."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cold_get(gateway, pid, key, gzip):
    auth = {"Authorization": f"Bearer {key}"}
    conn = http.client.HTTPConnection(gateway.hostname, gateway.port, timeout=300)
    conn.request("DELETE", f"/meetings/{MEETING}/participants/cache", headers=auth)
    assert conn.getresponse().status == 204
    conn.close()
    headers = dict(auth, **({"Accept-Encoding": "gzip"} if gzip else {}))
    cpu, wall = process_cpu(pid), time.perf_counter()
    conn = http.client.HTTPConnection(gateway.hostname, gateway.port, timeout=300)
    conn.request("GET", f"/meetings/{MEETING}/participants", headers=headers)
    response = conn.getresponse()
    body = response.read()
    wall = time.perf_counter() - wall
    time.sleep(0.2)  # let the gateway finish its bookkeeping before reading its CPU
    cpu = process_cpu(pid) - cpu
    assert response.status == 200, (response.status, body[:200])
    assert "fwd=miss" in response.getheader("cache-status"), response.getheader("cache-status")
    assert (response.getheader("content-encoding") == "gzip") == gzip
    conn.close()
    return wall, cpu, len(body)


def main():
    simulator, gateway, pid, key = urlparse(sys.argv[1]), urlparse(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    api = sdk_loop.client(simulator)
    sdk_loop.fetch(api)  # warm-up, both sides
    cold_get(gateway, pid, key, False)
    results = {"gateway plain": [], "gateway gzip": [], "sdk": []}
    for round_number in range(1, rounds + 1):
        for gzip in (False, True):
            wall, cpu, size = cold_get(gateway, pid, key, gzip)
            name = "gateway gzip" if gzip else "gateway plain"
            results[name].append((wall, cpu))
            print(f"round {round_number} {name:13} wall {wall * 1e3:7.1f} ms  CPU {cpu * 1e3:7.1f} ms  {size} bytes")
        cpu, wall = time.process_time(), time.perf_counter()
        records, pages = sdk_loop.fetch(api)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert len(records) == 50000
        results["sdk"].append((wall, cpu))
        print(f"round {round_number} {'sdk':13} wall {wall * 1e3:7.1f} ms  CPU {cpu * 1e3:7.1f} ms  {pages} pages")
    sdk_wall = statistics.median(w for w, _ in results["sdk"])
    sdk_cpu = statistics.median(c for _, c in results["sdk"])
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"median {name:13} wall {wall * 1e3:7.1f} ms ({wall / sdk_wall:.2f} of the SDK's)  "
              f"CPU {cpu * 1e3:7.1f} ms ({cpu / sdk_cpu:.2f} of the SDK's)")


if __name__ == "__main__":
    main()
