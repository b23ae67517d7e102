"""A live 1,234-record meeting watched by pollers, with and without Tencent's events.
Started by bench/live_events.sh, once per side.

Usage: python3 bench/live_events.py SIMULATOR_URL GATEWAY_URL API_KEY SECONDS LABEL

20 clients ask for the live meeting's list every 2 seconds while the simulator makes someone
join or leave it every 2 seconds. Reports the upstream calls the gateway made, and how long each
change took to show to the pollers: from the change's time in the simulator's own list to the
first answer that had it (1-second resolution: the list's times are whole seconds).
"""

import http.client
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlparse

LIVE = "100000000000000001"
CLIENTS = 20
EVERY = 2.0


def get_json(url, path, key=None):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, (path, response.status, body[:200])
    return json.loads(body)


def main():
    simulator, gateway, key = urlparse(sys.argv[1]), urlparse(sys.argv[2]), sys.argv[3]
    seconds, label = float(sys.argv[4]), sys.argv[5]
    path = f"/meetings/{LIVE}/participants"
    first = get_json(gateway, path, key)  # the first fetch, before the clock starts
    open_before = {p["uuid"] for p in first["participants"] if p["left_time"] is None}
    calls_before = get_json(simulator, "/_simulator/counters")["calls"]
    seen_join, seen_leave = {}, {}
    lock = threading.Lock()
    started = time.time()

    def poll(offset):
        time.sleep(offset)
        while time.time() - started < seconds:
            at = time.time()
            listed = get_json(gateway, path, key)["participants"]
            with lock:
                for p in listed:
                    uuid = p["uuid"]
                    if uuid and uuid.startswith("WM-sim-"):
                        seen_join.setdefault(uuid, at)
                    if p["left_time"] is not None and (uuid in open_before or uuid.startswith("WM-sim-")):
                        seen_leave.setdefault(uuid, at)
            time.sleep(max(0.0, EVERY - (time.time() - at)))

    threads = [threading.Thread(target=poll, args=(i * EVERY / CLIENTS,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = get_json(simulator, "/_simulator/counters")["calls"] - calls_before
    stored = get_json(simulator, f"/_simulator/meetings/{LIVE}/records")
    # Changes made during the run, early enough that a poll could still see them.
    horizon = started + seconds - 35
    delays, unseen = [], 0
    for r in stored:
        uuid = r.get("uuid") or ""
        if uuid.startswith("WM-sim-") and started <= int(r["join_time"]) <= horizon:
            if uuid in seen_join:
                delays.append(seen_join[uuid] - int(r["join_time"]))
            else:
                unseen += 1
        left = r.get("left_time")
        if left and started <= int(left) <= horizon and (uuid in open_before or uuid.startswith("WM-sim-")):
            if uuid in seen_leave:
                delays.append(seen_leave[uuid] - int(left))
            else:
                unseen += 1
    delays.sort()
    if not delays:
        print(f"{label}: {calls} upstream calls; no change seen ({unseen} made; "
              f"{sum(1 for r in stored if (r.get('uuid') or '').startswith('WM-sim-'))} joins stored, "
              f"{len(seen_join)} seen)")
        return
    p = lambda q: delays[min(len(delays) - 1, int(len(delays) * q))]
    print(f"{label}: {seconds:.0f} s, {CLIENTS} pollers every {EVERY:.0f} s: {calls} upstream calls; "
          f"{len(delays)} changes seen, {unseen} never; delay to the pollers: median "
          f"{statistics.median(delays):.1f} s, p95 {p(0.95):.1f} s, max {delays[-1]:.1f} s "
          f"(whole-second change times)")


if __name__ == "__main__":
    main()
