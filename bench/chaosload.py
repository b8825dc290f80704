#!/usr/bin/env python3
"""Load, settling and report of bench/chaos.sh (Python 3.11 stdlib only).

  chaosload.py run LB STOP SAMPLES           drives mixed load through the balancer at LB until
                                             the file STOP exists; one JSON line per call in SAMPLES
  chaosload.py settle NODE SAMPLES SECONDS   waits up to SECONDS until every acknowledged async
                                             call is final (history of the node at NODE);
                                             prints the records found as JSON
  chaosload.py report SAMPLES FAULTS ASYNC LEAKED
                                             prints the run's table (Markdown) and exits 1 when
                                             an async call was lost or a container leaked

The load: per route kind, one thread per route calling it again and again with a short pause:
sync cold calls (ferrite/hello), sync hot calls (ferrite/hot-hello, format http) and async
calls (type async, each with a unique name, identified by the call id of its 202). Each call is
one request with a 30 s timeout; a call that hangs longer counts as failed.

A sample is {"t": start (epoch s), "ms": elapsed, "kind", "route", "status" (0: no answer),
"error" (why there was no answer), "retry_after" (the header was set), "proxy" (the answer
came from HAProxy, not from a node: its HTML error page, or the JSON answer that
scripts/lib.sh's configuration gives it, which names no node), "ok", "call_id"}.
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

# kind -> (routes, pause between calls of one thread in seconds)
LOAD = {
    "cold": (["/cold1", "/cold2"], 0.2),
    "hot": (["/hot1", "/hot2"], 0.01),
    "async": (["/async1", "/async2"], 0.1),
}
APP = "chaos"
CALL_TIMEOUT_S = 30
FINAL = {"success", "error", "timeout", "cancelled"}


def call(host, port, route, body):
    """One POST on a new connection: (status, headers, body, error)."""
    conn = http.client.HTTPConnection(host, port, timeout=CALL_TIMEOUT_S)
    try:
        conn.request("POST", f"/r/{APP}{route}", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp, resp.read(), ""
    except TimeoutError:
        return 0, None, b"", "timeout"
    except (OSError, http.client.HTTPException) as e:
        return 0, None, b"", type(e).__name__
    finally:
        conn.close()


def mode_run(lb, stop_path, samples_path):
    u = urllib.parse.urlsplit(lb)
    lock = threading.Lock()
    out = open(samples_path, "w")
    serial = iter(range(10**9))

    def worker(kind, route, pause):
        while not os.path.exists(stop_path):
            with lock:
                n = next(serial)
            name = f"chaos-{n}"
            began = time.time()
            status, resp, data, error = call(u.hostname, u.port, route,
                                             json.dumps({"name": name}).encode())
            sample = {
                "t": round(began, 3), "ms": round((time.time() - began) * 1000, 1),
                "kind": kind, "route": route, "status": status, "error": error,
                "retry_after": bool(resp and resp.getheader("Retry-After")),
                "proxy": data.lstrip().startswith(b"<html") or b"Ferrite node" in data, "ok": False, "call_id": None,
            }
            if kind == "async" and status == 202:
                try:
                    sample["call_id"] = json.loads(data)["call_id"]
                    sample["ok"] = True
                except (ValueError, KeyError):
                    sample["error"] = "202 without a call id"
            elif kind != "async" and status == 200:
                sample["ok"] = data.strip() == f"Hello {name}!".encode()
                if not sample["ok"]:
                    sample["error"] = "wrong body"
            with lock:
                out.write(json.dumps(sample) + "\n")
            time.sleep(pause)

    threads = [threading.Thread(target=worker, args=(kind, route, pause))
               for kind, (routes, pause) in LOAD.items() for route in routes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()


def read_samples(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def history(node):
    """Every async call of the app in the node's history: id -> record."""
    found = {}
    for route in LOAD["async"][0]:
        cursor = ""
        while True:
            query = urllib.parse.urlencode({"path": route, "per_page": 1000, "cursor": cursor})
            with urllib.request.urlopen(f"{node}/v1/apps/{APP}/calls?{query}", timeout=30) as r:
                page = json.load(r)
            for c in page["calls"]:
                found[c["id"]] = {"status": c["status"], "attempts": c.get("attempts", 0),
                                  "error": c.get("error")}
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return found


def mode_settle(node, samples_path, seconds):
    acked = [s["call_id"] for s in read_samples(samples_path) if s["call_id"]]
    deadline = time.time() + float(seconds)
    began = time.time()
    records = {}
    while True:
        try:
            records = history(node)
        except (OSError, ValueError, KeyError) as e:
            print(f"chaosload.py: history not readable yet ({e})", file=sys.stderr)
        pending = sum(1 for i in acked if records.get(i, {}).get("status") not in FINAL)
        if pending == 0 or time.time() >= deadline:
            break
        time.sleep(1)
    print(json.dumps({"waited_s": round(time.time() - began, 1), "pending": pending,
                      "records": {i: records[i] for i in acked if i in records}}))


def mode_report(samples_path, faults_path, async_path, leaked):
    samples = read_samples(samples_path)
    faults = []  # kind, start, recovered (epoch s), detail
    with open(faults_path) as f:
        for line in f:
            kind, start, end, *detail = line.split()
            faults.append({"kind": kind, "start": float(start), "end": float(end),
                           "detail": " ".join(detail)})
    settled = json.load(open(async_path))
    records = settled["records"]
    began = min(s["t"] for s in samples)
    # A call belongs to the latest fault it overlapped: running when the fault
    # began, or started before grace_s had passed after the recovery.
    grace_s = 15

    def fault_of(s):
        for f in reversed(faults):
            if s["t"] <= f["end"] + grace_s and s["t"] + s["ms"] / 1000 >= f["start"]:
                return f
        return None

    def outcome(s):
        if s["ok"]:
            return "ok"
        if s["status"] in (429, 503) and s["retry_after"]:
            return "retryable"
        f = fault_of(s)
        lost_node = s["status"] == 0 or (s["proxy"] and s["status"] in (502, 503, 504))
        if f and f["kind"] == "node-kill" and lost_node:
            return "retryable"
        return "failed"

    def label(s):
        if s["status"] == 0:
            return f"no answer ({s['error']})"
        return f"{s['status']}{' from HAProxy' if s['proxy'] else ''}" + (
            f" ({s['error']})" if s["error"] else "")

    by_fault = {}
    for s in samples:
        s["outcome"] = outcome(s)
        f = fault_of(s)
        key = f["kind"] if f else "no fault"
        row = by_fault.setdefault(key, {"calls": 0, "ok": 0, "retryable": {}, "failed": {}, "ms": {"hot": [0], "async": [0]}})
        row["calls"] += 1
        if s["kind"] in row["ms"]:
            row["ms"][s["kind"]].append(s["ms"])
        if s["outcome"] == "ok":
            row["ok"] += 1
        else:
            what = f"{s['kind']} {label(s)}"
            row[s["outcome"]][what] = row[s["outcome"]].get(what, 0) + 1
        if f and not s["ok"]:
            f["last_bad"] = max(f.get("last_bad", 0), s["t"] + s["ms"] / 1000 - f["start"])
            f["bad"] = f.get("bad", 0) + 1

    total = len(samples)
    count = lambda o: sum(1 for s in samples if s["outcome"] == o)
    failed = {}
    for s in samples:
        if s["outcome"] == "failed":
            failed[label(s)] = failed.get(label(s), 0) + 1
    acked = [s["call_id"] for s in samples if s["call_id"]]
    status = lambda i: records.get(i, {}).get("status")
    completed = sum(1 for i in acked if status(i) == "success")
    ended_bad = {}
    for i in acked:
        if status(i) in FINAL - {"success"}:
            ended_bad[status(i)] = ended_bad.get(status(i), 0) + 1
    no_record = sum(1 for i in acked if i not in records)
    unfinished = sum(1 for i in acked if i in records and status(i) not in FINAL)
    lost = no_record + unfinished
    again = sum(1 for i in acked if records.get(i, {}).get("attempts", 0) > 1)
    kinds = {k: sum(1 for s in samples if s["kind"] == k) for k in LOAD}
    fmt = lambda d: ", ".join(f"{k}: {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])) or "none"

    print("| measure | value |")
    print("| --- | --- |")
    print(f"| calls made | {total} ({fmt(kinds)}) over {max(s['t'] for s in samples) - began:.0f} s |")
    print(f"| succeeded | {count('ok')} |")
    print(f"| failed, retryable (429/503 with `Retry-After`; no answer or HAProxy's 502/503 during a node kill) | {count('retryable')} |")
    print(f"| failed otherwise, by status | {count('failed')} ({fmt(failed)}) |")
    print(f"| async acknowledged (202) | {len(acked)} |")
    print(f"| async completed (success) | {completed} |")
    errors = {}
    for i in acked:
        if status(i) in FINAL - {"success"}:
            why = (records[i].get("error") or "")[:120]
            errors[why] = errors.get(why, 0) + 1
    print(f"| async ended in another state | {sum(ended_bad.values())} ({fmt(ended_bad)}"
          f"{'; ' + fmt(errors) if errors else ''}) |")
    print(f"| async lost (no record, or still queued or running when the wait for them ended, "
          f"{settled['waited_s']:.0f} s after the load) | {lost} (no record: {no_record}, queued or running: {unfinished}) |")
    print(f"| async started more than once (`attempts` > 1) | {again} |")
    print(f"| containers left on the engine after the nodes stopped | {leaked} |")
    print()
    print(f"Calls by the fault they overlapped (running when it began, or started up to {grace_s} s after its "
          "recovery):")
    print()
    print("| fault | calls | succeeded | retryable | failed otherwise | slowest hot call, async 202 |")
    print("| --- | ---: | ---: | --- | --- | ---: |")
    counted = lambda d: f"{sum(d.values())}" + (f" ({fmt(d)})" if d else "")
    for key in [k for k in ("engine", "postgres", "redis-restart", "redis-stop", "node-kill", "node-exit")
                if k in by_fault] + ["no fault"]:
        row = by_fault.get(key, {"calls": 0, "ok": 0, "retryable": {}, "failed": {}, "ms": {"hot": [0], "async": [0]}})
        print(f"| {key} | {row['calls']} | {row['ok']} | {counted(row['retryable'])} | {counted(row['failed'])} "
              f"| {max(row['ms']['hot']) / 1000:.2f} s, {max(row['ms']['async']) / 1000:.2f} s |")
    print()
    print("Faults injected (time from the start of the load; the last call that did not succeed, "
          "from the fault's start to that call's end):")
    print()
    print("| at | fault | out for | calls not succeeded | last one ended |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for f in faults:
        last = f"+{f['last_bad']:.1f} s" if "bad" in f else "-"
        print(f"| {f['start'] - began:.0f} s | {(f['kind'] + ' ' + f['detail']).strip()} | {f['end'] - f['start']:.1f} s "
              f"| {f.get('bad', 0)} | {last} |")
    return 1 if lost or int(leaked) else 0


MODES = {"run": (mode_run, 3), "settle": (mode_settle, 3), "report": (mode_report, 4)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES or len(sys.argv) - 2 != MODES[sys.argv[1]][1]:
        sys.exit(__doc__)
    fn, _ = MODES[sys.argv[1]]
    sys.exit(fn(*sys.argv[2:]) or 0)
