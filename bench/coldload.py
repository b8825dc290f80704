#!/usr/bin/env python3
"""Low-overhead load client for bench/cold.sh (Python 3.11 stdlib only).

Each mode prints one JSON object on stdout. Latencies are in milliseconds,
timed with time.perf_counter() around one request on a persistent HTTP/1.1
connection (http.client), so no process start or TCP handshake is counted.
Percentiles are nearest-rank: with 100 samples or fewer, p99 is the maximum.

  coldload.py docker N IMAGE BODY                 N sequential `docker run --rm -i IMAGE`
  coldload.py seq URL N PAUSE_MS BODY             N sequential POSTs, PAUSE_MS between calls
  coldload.py conc URL CLIENTS SECONDS MAX BODY   CLIENTS threads until SECONDS or MAX calls
  coldload.py dockerconc IMAGE CLIENTS SECONDS MAX BODY   the same with `docker run --rm -i IMAGE`
  coldload.py log FILE FROM_LINE                  counts the server's `call finished` lines
"""

import http.client
import json
import math
import re
import subprocess
import sys
import threading
import time
import urllib.parse

EXPECTED = b"Hello Johnny!\n"


def pct(sorted_ms, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_ms:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_ms)))
    return round(sorted_ms[rank - 1], 2)


def summary(lat_ms, errors, wall_s, **extra):
    lat = sorted(lat_ms)
    out = {
        "n": len(lat) + errors,
        "ok": len(lat),
        "errors": errors,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "min_ms": round(lat[0], 2) if lat else None,
        "max_ms": round(lat[-1], 2) if lat else None,
        "mean_ms": round(sum(lat) / len(lat), 2) if lat else None,
        "p99_is_max": len(lat) <= 100,
        "wall_s": round(wall_s, 2),
        "rate_per_s": round(len(lat) / wall_s, 2) if wall_s > 0 else None,
    }
    out.update(extra)
    return out


class Client:
    """One persistent connection; reconnects after a failure."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path
        self.conn = None

    def post(self, body):
        """Returns (status, response body, elapsed ms); status 0 on a transport error."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.connect()
        start = time.perf_counter()
        try:
            self.conn.request("POST", self.path, body=body,
                              headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            data = resp.read()
            elapsed = (time.perf_counter() - start) * 1000
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return resp.status, data, elapsed
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return 0, str(e).encode(), (time.perf_counter() - start) * 1000

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def docker_run(image, body):
    """One `docker run --rm -i IMAGE` fed BODY: (status as 200/0, stdout, elapsed ms)."""
    start = time.perf_counter()
    r = subprocess.run(["docker", "run", "--rm", "-i", image], input=body.encode() + b"\n",
                       capture_output=True)
    return (200 if r.returncode == 0 else 0), r.stdout, (time.perf_counter() - start) * 1000


def mode_docker(n, image, body):
    lat, errors, bad = [], 0, 0
    began = time.perf_counter()
    for _ in range(int(n)):
        status, out, elapsed = docker_run(image, body)
        if status != 200:
            errors += 1
            continue
        if out != EXPECTED:
            bad += 1
        lat.append(elapsed)
    return summary(lat, errors, time.perf_counter() - began, bad_body=bad)


def mode_seq(url, n, pause_ms, body):
    client, lat, errors, bad, statuses = Client(url), [], 0, 0, {}
    pause = float(pause_ms) / 1000
    busy = 0.0
    began = time.perf_counter()
    for i in range(int(n)):
        if i and pause:
            time.sleep(pause)
        status, data, elapsed = client.post(body.encode())
        busy += elapsed / 1000
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            errors += 1
            continue
        if data != EXPECTED:
            bad += 1
        lat.append(elapsed)
    wall = time.perf_counter() - began
    client.close()
    # rate_per_s counts the pauses; busy_rate_per_s is calls per second of calling.
    return summary(lat, errors, wall, bad_body=bad, statuses=statuses, pause_ms=float(pause_ms),
                   busy_rate_per_s=round(len(lat) / busy, 2) if busy else None)


def mode_conc(url, clients, seconds, max_calls, body):
    return concurrently(lambda: Client(url), clients, seconds, max_calls, body)


class DockerRuns:
    """A `docker run --rm -i` per call, in the shape of Client."""

    def __init__(self, image):
        self.image = image

    def post(self, body):
        return docker_run(self.image, body.decode())

    def close(self):
        pass


def mode_dockerconc(image, clients, seconds, max_calls, body):
    return concurrently(lambda: DockerRuns(image), clients, seconds, max_calls, body)


def concurrently(new_client, clients, seconds, max_calls, body):
    """CLIENTS threads, each with its own new_client(), calling until SECONDS or MAX calls."""
    lock = threading.Lock()
    lat, statuses = [], {}
    counters = {"issued": 0, "errors": 0, "bad": 0}
    deadline = time.perf_counter() + float(seconds)

    def worker():
        client = new_client()
        while True:
            with lock:
                if counters["issued"] >= int(max_calls) or time.perf_counter() >= deadline:
                    break
                counters["issued"] += 1
            status, data, elapsed = client.post(body.encode())
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200:
                    counters["errors"] += 1
                else:
                    if data != EXPECTED:
                        counters["bad"] += 1
                    lat.append(elapsed)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(int(clients))]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return summary(lat, counters["errors"], wall, bad_body=counters["bad"], statuses=statuses,
                   clients=int(clients))


def mode_log(path, from_line):
    """`call finished` lines of a text-format server log from line FROM_LINE (1-based)."""
    field = lambda name, line: (m.group(1) if (m := re.search(rf"\b{name}=(\S+)", line)) else None)
    calls = pre_true = pre_false = 0
    elapsed = []
    with open(path, errors="replace") as f:
        for number, line in enumerate(f, 1):
            if number < int(from_line) or "call finished" not in line:
                continue
            calls += 1
            pre = field("prestarted", line)
            pre_true += pre == "true"
            pre_false += pre == "false"
            e = field("elapsed_ms", line)
            if e is not None:
                elapsed.append(float(e))
    elapsed.sort()
    return {"calls": calls, "prestarted_true": pre_true, "prestarted_false": pre_false,
            "server_p50_ms": pct(elapsed, 50), "server_p99_ms": pct(elapsed, 99)}


MODES = {"docker": (mode_docker, 3), "seq": (mode_seq, 4), "conc": (mode_conc, 5),
         "dockerconc": (mode_dockerconc, 5), "log": (mode_log, 2)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES or len(sys.argv) - 2 != MODES[sys.argv[1]][1]:
        sys.exit(__doc__)
    fn, _ = MODES[sys.argv[1]]
    print(json.dumps(fn(*sys.argv[2:])))
