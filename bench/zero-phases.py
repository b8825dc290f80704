#!/usr/bin/env python3
"""Where a Swarm service's scale from zero spends its time (bench/zero-phases.py).

Scales a service of ferrite/busybox (`httpd -f -p 8080`, on an attachable
overlay network, DNS round robin, as Ferrite makes them) from 0 to 1 replica
through the Engine API, TRIALS times, and times each step from the scale
request: the task as Swarm reports it (each state first seen, polling
/tasks every 10 ms), its container's create and start (the engine's events),
and the task reported running with its address. Everything it makes is
labelled with its id and removed at the end.

    bench/zero-phases.py [TRIALS]    # 5 by default
"""
import http.client, json, os, urllib.parse, socket, statistics, subprocess, sys, threading, time

SOCK = "/var/run/docker.sock"
ID = f"bench-zero-{os.getpid()}"
TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(SOCK)


def api(method, path, body=None):
    conn = Unix("localhost")
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
    return json.loads(data) if data else None


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


events = []  # (time, action) of the service's containers


def follow():
    conn = Unix("localhost")
    filters = json.dumps({"type": ["container"], "label": [f"com.docker.swarm.service.name={ID}"]})
    conn.request("GET", "/events?filters=" + urllib.parse.quote(filters))
    resp = conn.getresponse()
    while True:
        line = resp.readline()
        if not line:
            return
        e = json.loads(line)
        events.append((e["timeNano"] / 1e9, e["Action"]))


def main():
    docker("network", "create", "--driver", "overlay", "--attachable", "--label", f"bench={ID}", ID)
    spec = {
        "Name": ID, "Labels": {"bench": ID},
        "TaskTemplate": {"ContainerSpec": {"Image": "ferrite/busybox",
                                           "Command": ["httpd", "-f", "-p", "8080", "-h", "/"]},
                         "Networks": [{"Target": ID}],
                         "RestartPolicy": {"Condition": "on-failure"}},
        "Mode": {"Replicated": {"Replicas": 0}},
        "EndpointSpec": {"Mode": "dnsrr"},
    }
    api("POST", "/services/create", spec)
    threading.Thread(target=follow, daemon=True).start()
    rows = []
    try:
        for trial in range(TRIALS):
            time.sleep(2)
            svc = api("GET", f"/services/{ID}")
            spec = svc["Spec"]
            spec["Mode"]["Replicated"]["Replicas"] = 1
            del events[:]
            t0 = time.time()
            api("POST", f"/services/{ID}/update?version={svc['Version']['Index']}", spec)
            seen = {}
            tasks_filter = urllib.parse.quote(json.dumps({"service": [ID], "desired-state": ["running"]}))
            while time.time() - t0 < 30:
                for task in api("GET", "/tasks?filters=" + tasks_filter):
                    state = task["Status"]["State"]
                    seen.setdefault(state, time.time() - t0)
                    addrs = [a for n in task.get("NetworksAttachments", []) for a in n.get("Addresses", [])]
                    if addrs:
                        seen.setdefault("address known", time.time() - t0)
                if "running" in seen:
                    break
                time.sleep(0.01)
            time.sleep(0.3)
            for at, action in events:
                if action in ("create", "start"):
                    seen.setdefault(f"container {action}", at - t0)
            rows.append(seen)
            print(f"trial {trial + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(seen.items(), key=lambda kv: kv[1])),
                  file=sys.stderr)
            svc = api("GET", f"/services/{ID}")
            spec = svc["Spec"]
            spec["Mode"]["Replicated"]["Replicas"] = 0
            api("POST", f"/services/{ID}/update?version={svc['Version']['Index']}", spec)
            while api("GET", "/tasks?filters=" + tasks_filter):
                time.sleep(0.1)
    finally:
        subprocess.run(["docker", "service", "rm", ID], capture_output=True)
        for _ in range(30):
            if subprocess.run(["docker", "network", "rm", ID], capture_output=True).returncode == 0:
                break
            time.sleep(1)
    keys = sorted({k for r in rows for k in r}, key=lambda k: statistics.median(r[k] for r in rows if k in r))
    print("| step, seconds after the scale request | median | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for k in keys:
        xs = sorted(r[k] for r in rows if k in r)
        print(f"| {k} | {statistics.median(xs):.3f} | {xs[0]:.3f} | {xs[-1]:.3f} |")


main()
