"""Cost of delivering Ferrite's init into a cold container, against the local
engine, interleaved in one run: the archive upload Ferrite used before
(PUT /containers/{id}/archive, without and with the confinement settings) and
the read-only init volume mounted at create (with them). Times create until
start has returned, through the Engine API on /var/run/docker.sock (no CLI),
for ferrite/hello; each container is removed at once.

    python3 bench/init_delivery.py INIT_BINARY VOLUME [N]

INIT_BINARY: the static init (target/debug/build/ferrite-engine-*/out/ferrite-init);
VOLUME: the init volume a server made (docker volume ls --filter label=org.ferrite.init).
Figures: docs/cold-calls.md.
"""
import http.client, io, json, socket, sys, tarfile, time, statistics

class UnixConn(http.client.HTTPConnection):
    def __init__(self): super().__init__("localhost")
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect("/var/run/docker.sock")

def req(method, path, body=None, ctype="application/json"):
    c = UnixConn()
    headers = {"Content-Type": ctype} if body is not None else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read(); c.close()
    if r.status >= 300: raise SystemExit(f"{method} {path}: {r.status} {data[:200]}")
    return data

def init_tar(path):
    """.ferrite/ and .ferrite/init (0755), as Ferrite uploaded them."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        d = tarfile.TarInfo(".ferrite"); d.type = tarfile.DIRTYPE; d.mode = 0o755
        tar.addfile(d)
        data = open(path, "rb").read()
        f = tarfile.TarInfo(".ferrite/init"); f.size = len(data); f.mode = 0o755
        tar.addfile(f, io.BytesIO(data))
    return out.getvalue()

tar = init_tar(sys.argv[1])
volume = sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 30
base = {"Image": "ferrite/hello", "Entrypoint": ["/.ferrite/init"], "Cmd": ["/bin/sh", "/fn/hello.sh"],
        "OpenStdin": True, "StdinOnce": True, "AttachStdin": True, "AttachStdout": True, "AttachStderr": True,
        "Labels": {"org.ferrite.bench": "init-delivery"}}
def run(kind):
    cfg = json.loads(json.dumps(base))
    host = {"Memory": 128 << 20, "MemorySwap": 128 << 20}
    if kind != "upload":
        host.update({"CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"], "PidsLimit": 256,
                     "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 1024}], "CpuShares": 1024,
                     "LogConfig": {"Type": "none"}})
    if kind == "volume":
        host.update({"Mounts": [{"Target": "/.ferrite", "Source": volume, "Type": "volume", "ReadOnly": True,
                                 "VolumeOptions": {"NoCopy": True}}]})
    cfg["HostConfig"] = host
    t0 = time.perf_counter()
    cid = json.loads(req("POST", "/containers/create", json.dumps(cfg)))["Id"]
    if kind in ("upload", "upload+confined"):
        req("PUT", f"/containers/{cid}/archive?path=/", tar, "application/x-tar")
    req("POST", f"/containers/{cid}/start", b"")
    dt = (time.perf_counter() - t0) * 1000
    req("DELETE", f"/containers/{cid}?force=true&v=true")
    return dt
kinds = ["upload", "upload+confined", "volume"]
times = {k: [] for k in kinds}
for i in range(n):
    for kind in (kinds if i % 2 == 0 else kinds[::-1]):
        times[kind].append(run(kind))
for kind, ts in times.items():
    ts.sort()
    print(f"{kind}: p50 {statistics.median(ts):.1f} ms, mean {statistics.mean(ts):.1f} ms, min {ts[0]:.1f}, max {ts[-1]:.1f} (n={len(ts)})")
print(f"ratio volume/upload p50: {statistics.median(times['volume'])/statistics.median(times['upload']):.2f}")
