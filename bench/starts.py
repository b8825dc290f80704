#!/usr/bin/env python3
"""How well the engine starts containers in parallel (Python 3.11 stdlib only).

For each N, ROUNDS times: N threads each create and start one container
through the Engine API (the unix socket, one connection per thread), as
Ferrite starts a cold container (stdin open, memory limit, every capability
dropped), all released at once; then the N are removed and the next round
begins. Prints, per N, the median and worst time of one create+start and the
throughput (containers started per second of the batch's wall time). The
setting it informs is FERRITE_MAX_CONCURRENT_STARTS (docs/cold-calls.md).

  bench/starts.py [IMAGE] [ROUNDS] [N...]     # ferrite/hello 5 1 2 4 8
"""

import http.client
import json
import socket
import statistics
import sys
import threading
import time

SOCKET = "/var/run/docker.sock"
LABEL = "org.ferrite.bench"


class Engine(http.client.HTTPConnection):
    """One HTTP connection to the engine's unix socket."""

    def __init__(self):
        super().__init__("localhost", timeout=120)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = self.getresponse()
        out = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {out[:200]!r}")
        return json.loads(out) if out else None


def create_start(image, times, ids, barrier):
    engine = Engine()
    body = {
        "Image": image, "OpenStdin": True, "StdinOnce": True, "AttachStdin": True,
        "AttachStdout": True, "AttachStderr": True, "Labels": {LABEL: "starts"},
        "HostConfig": {"Memory": 128 << 20, "MemorySwap": 128 << 20, "CapDrop": ["ALL"],
                       "SecurityOpt": ["no-new-privileges"], "PidsLimit": 64,
                       "LogConfig": {"Type": "none"}},
    }
    barrier.wait()
    began = time.perf_counter()
    created = engine.call("POST", "/containers/create", body)
    engine.call("POST", f"/containers/{created['Id']}/start")
    times.append(time.perf_counter() - began)
    ids.append(created["Id"])
    engine.close()


def remove(ids):
    engine = Engine()
    for cid in ids:
        engine.call("DELETE", f"/containers/{cid}?force=true&v=true")
    engine.close()


def batch(image, n):
    times, ids = [], []
    barrier = threading.Barrier(n + 1)
    threads = [threading.Thread(target=create_start, args=(image, times, ids, barrier))
               for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    remove(ids)
    return times, wall


def main():
    image = sys.argv[1] if len(sys.argv) > 1 else "ferrite/hello"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    sizes = [int(a) for a in sys.argv[3:]] or [1, 2, 4, 8]
    batch(image, 1)  # warm the engine's caches once, unmeasured
    print("| N | one create+start, median | worst | containers/s |")
    print("| --- | --- | --- | --- |")
    for n in sizes:
        each, walls = [], []
        for _ in range(rounds):
            times, wall = batch(image, n)
            each.extend(times)
            walls.append(wall)
        rate = n * rounds / sum(walls)
        print(f"| {n} | {statistics.median(each) * 1000:.0f} ms | {max(each) * 1000:.0f} ms "
              f"| {rate:.2f} |", flush=True)


if __name__ == "__main__":
    main()
