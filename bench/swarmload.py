#!/usr/bin/env python3
"""Calls for bench/cluster-swarm.sh, and what they show.

  swarmload.py run URL BODY THREADS STOP OUT
      THREADS callers POST BODY to URL, one call after the other each, on a
      new connection per call, until the file STOP exists; every call is a
      line of OUT: start and end (ms since the epoch), status, the answer's
      first line.
  swarmload.py report OUT TASKS [FROM_MS]
      The calls of OUT (those that ended after FROM_MS) as one line of JSON:
      calls, failed, answers per Swarm node (TASKS: lines "container-id
      node", the answer being the task container's hostname), the
      longest time without a successful answer (ms), with when it began,
      and the slowest call (ms).
"""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request


def now_ms():
    return int(time.time() * 1000)


def run(url, body, threads, stop, out):
    lock = threading.Lock()
    sink = open(out, "a", buffering=1)

    def caller():
        while not os.path.exists(stop):
            start = now_ms()
            try:
                with urllib.request.urlopen(url, data=body.encode(), timeout=60) as reply:
                    status, answer = reply.status, reply.read()
            except urllib.error.HTTPError as e:
                status, answer = e.code, e.read()
            except OSError as e:
                status, answer = 0, str(e).encode()
            first = answer.decode(errors="replace").strip().splitlines()[:1]
            line = f"{start} {now_ms()} {status} {first[0] if first else '-'}\n"
            with lock:
                sink.write(line)
            if status != 200:
                time.sleep(0.05)

    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def report(out, tasks, since):
    nodes = {}
    for line in open(tasks):
        parts = line.split()
        if len(parts) == 2:
            nodes[parts[0][:12]] = parts[1]
    calls = []
    for line in open(out):
        start, end, status, answer = line.rstrip("\n").split(" ", 3)
        if int(end) >= since:
            calls.append((int(start), int(end), int(status), answer))
    calls.sort(key=lambda c: c[1])
    per_node, failed, errors = {}, 0, {}
    for _, _, status, answer in calls:
        if status == 200:
            node = nodes.get(answer, "unknown")
            per_node[node] = per_node.get(node, 0) + 1
        else:
            failed += 1
            errors[status] = errors.get(status, 0) + 1
    ends = [end for _, end, status, _ in calls if status == 200]
    # From the moment asked for, or else from the first answer.
    ends = ([since] if since else []) + ends
    gap, at = 0, ends[0] if ends else since
    for a, b in zip(ends, ends[1:]):
        if b - a > gap:
            gap, at = b - a, a
    slowest = max((end - start for start, end, _, _ in calls), default=0)
    print(json.dumps({"calls": len(calls), "failed": failed, "errors": errors,
                      "per_node": dict(sorted(per_node.items())),
                      "longest_gap_ms": gap, "gap_began_ms": at, "slowest_ms": slowest}))


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else 0)
    else:
        sys.exit(__doc__)
