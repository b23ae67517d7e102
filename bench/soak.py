"""The soak's load and its sampler (bench/soak.sh starts the processes).

Arguments: simulator URL, gateway URL, API key, gateway pid, duration in seconds, CSV path.
Prints a line a minute and a summary; exits 1 when memory (less the cache's own bytes),
descriptors or tasks kept growing after warm-up (the first third of the run).
`python3 bench/soak.py --summarize CSV DURATION` judges an earlier run's samples again.
"""

import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

def summarize(csv_path, duration):
    """Judges a run from its samples: after warm-up (the first third), the largest of each
    measure in the next sixth against the largest in the last sixth. Memory is judged without the
    cache's own bytes, which its bound covers and which grow with the data (the live list grows
    by the events delivered); both are printed. Returns the exit status."""
    import csv

    rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(open(csv_path))]
    for row in rows:
        row["other_bytes"] = row["rss_bytes"] - row["cache_bytes"]
    warm = duration / 3
    first = [r for r in rows if warm <= r["seconds"] < warm + duration / 6]
    last = [r for r in rows if r["seconds"] >= duration - duration / 6]
    peak = lambda stretch, name: max(r[name] for r in stretch)
    mib = 2**20
    print(f"after warm-up ({warm / 60:.0f} min), then the last {duration / 6 / 60:.0f} min:")
    for name, label in [("rss_bytes", "resident"), ("cache_bytes", "cache"),
                        ("other_bytes", "resident less the cache")]:
        print(f"  {label}: {peak(first, name) / mib:.1f} MiB, then {peak(last, name) / mib:.1f} MiB")
    for name in ["open_fds", "tasks", "threads"]:
        print(f"  {name}: {peak(first, name):.0f}, then {peak(last, name):.0f}")
    print(f"  live list: {first[0]['live_records']:.0f} records, then {last[-1]['live_records']:.0f}")
    flat = (peak(last, "other_bytes") <= 1.1 * peak(first, "other_bytes")
            and peak(last, "open_fds") <= peak(first, "open_fds") + 25
            and peak(last, "tasks") <= peak(first, "tasks") + 25)
    print("flat after warm-up" if flat else "GROWING after warm-up")
    return 0 if flat else 1


if sys.argv[1] == "--summarize":  # an earlier run's samples: --summarize CSV DURATION
    sys.exit(summarize(sys.argv[2], int(sys.argv[3])))

simulator, gateway, key, pid, duration, csv_path = sys.argv[1:]
pid, duration = int(pid), int(duration)
live, huge = "100000000000000001", "100000000000000002"
stop = threading.Event()
counts = {"answers": 0, "5xx": 0, "errors": 0}
lock = threading.Lock()


def count(name):
    with lock:
        counts[name] += 1


class Client:
    """One keep-alive connection, opened again after any failure."""

    def __init__(self, base, headers=None):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.headers = headers or {}
        self.conn = None

    def call(self, method, path, body=None, headers=None):
        # A kept-alive connection the server closed while idle is opened again once, as any
        # HTTP client does; a failure on a new connection is counted.
        for fresh in (self.conn is None, True):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                response = self.conn.getresponse()
                data = response.read()
                count("answers")
                if response.status >= 500:
                    count("5xx")
                return response.status, data
            except (OSError, http.client.HTTPException):
                self.conn = None
                if fresh:
                    count("errors")
                    return None, b""


def every(seconds, action):
    def loop():
        while not stop.wait(seconds):
            action()
    threading.Thread(target=loop, daemon=True).start()


auth = {"Authorization": f"Bearer {key}"}


def hits():
    client = Client(gateway, auth)
    paths = [
        (f"/meetings/{live}/participants", {}),
        (f"/meetings/{live}/participants", {"Accept-Encoding": "gzip"}),
        (f"/meetings/{live}/attendance", {}),
        (f"/meetings/{live}/participants?format=csv", {"Accept-Encoding": "gzip"}),
    ]
    i = 0
    while not stop.is_set():
        path, headers = paths[i % len(paths)]
        client.call("GET", path, headers=headers)
        i += 1
        time.sleep(0.005)


cold = Client(gateway, auth)
window = [0]


def cold_list():
    now = int(time.time())
    window[0] += 1
    cold.call("GET", f"/meetings/{live}/participants?start_time={now - 7200 - window[0] % 100000}&end_time={now}")


big = Client(gateway, auth)


def big_list():
    big.call("DELETE", f"/meetings/{huge}/participants/cache")
    big.call("GET", f"/meetings/{huge}/participants", headers={"Accept-Encoding": "gzip"})


purger = Client(gateway, auth)


def purge_live():
    purger.call("DELETE", f"/meetings/{live}/participants/cache")


faults = Client(simulator)


def inject(fault):
    faults.call("POST", "/_simulator/faults", body=json.dumps(fault), headers={"Content-Type": "application/json"})


def small_faults():
    inject({"http_status": 503, "times": 3})
    inject({"malformed": True, "times": 2})


def outage():
    inject({"http_status": 503})
    stop.wait(20)
    faults.call("DELETE", "/_simulator/faults")


def half_requests():
    url = urllib.parse.urlsplit(gateway)
    held = []
    for _ in range(20):
        try:
            s = socket.create_connection((url.hostname, url.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
            held.append(s)
        except OSError:
            count("errors")
    stop.wait(15)  # past the gateway's 10-second header timeout
    for s in held:
        s.close()


def sample():
    status = open(f"/proc/{pid}/status").read()
    field = lambda name: int(next(l.split()[1] for l in status.splitlines() if l.startswith(name + ":")))
    rss = field("VmRSS") * 1024
    threads = field("Threads")
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    text = Client(gateway).call("GET", "/metrics")[1].decode()
    listed = Client(gateway, auth).call("GET", f"/meetings/{live}/participants")[1]
    records = json.loads(listed).get("total_count") or 0 if listed else 0
    metric = lambda name: next((float(l.split()[1]) for l in text.splitlines() if l.startswith(name + " ")), float("nan"))
    return rss, fds, threads, metric("gateway_tokio_alive_tasks"), metric("gateway_cache_bytes"), records


for _ in range(3):
    threading.Thread(target=hits, daemon=True).start()
every(0.5, cold_list)
every(60, big_list)
every(5, purge_live)
every(90, small_faults)
every(300, outage)
every(30, half_requests)

rows = []
started = time.time()
with open(csv_path, "w") as out:
    out.write("seconds,rss_bytes,open_fds,threads,tasks,cache_bytes,live_records,answers,5xx,errors\n")
    while time.time() - started < duration:
        time.sleep(10)
        t = time.time() - started
        rss, fds, threads, tasks, cache, records = sample()
        with lock:
            c = dict(counts)
        rows.append((t, rss, fds, threads, tasks))
        out.write(f"{t:.0f},{rss},{fds},{threads},{tasks:.0f},{cache:.0f},{records},{c['answers']},{c['5xx']},{c['errors']}\n")
        out.flush()
        if len(rows) % 6 == 0:
            print(f"{t / 60:5.1f} min: RSS {rss / 2**20:6.1f} MiB, {fds} fds, {threads} threads, "
                  f"{tasks:.0f} tasks, cache {cache / 2**20:.1f} MiB, live list {records} records; {c['answers']} answers, "
                  f"{c['5xx']} 5xx, {c['errors']} connection errors", flush=True)
stop.set()
print(f"answers {counts['answers']}, 5xx {counts['5xx']} (outages with no stale copy), "
      f"connection errors {counts['errors']}")
sys.exit(summarize(csv_path, duration))
