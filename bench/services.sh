#!/usr/bin/env bash
# Routes as Swarm services (bench/services.sh): what Ferrite adds to a call
# against calling the service's task directly from the same overlay network,
# and how long a call to a service at zero replicas takes to answer.
#
# Ferrite runs as its image (ferrite/ferrite, release profile) on an
# attachable overlay network, the Swarm being this machine's (made active
# for the run if it is not, and left again). The function is
# ferrite/hot-hello made into a service image (`ferrite services image
# --format http`: the watchdog keeping 8 hot processes), one replica. The
# client is bench/hotclient run in a container on the same network (HTTP/1.1
# keep-alive, one connection per client thread): first at the task's
# address (the baseline), then at HAProxy in front of the task (what a plain
# proxy costs on this machine: the bound for any proxy), then at Ferrite's
# `/r/bench/hello`. Scale from
# zero: two routes, scale_to_zero_after 1 s, called from the host through
# Ferrite's published port once at zero, SCALE_TRIALS times each (time to
# first byte): one of ferrite/hello's service image (run as it is: the call
# waits for the task), one of the plain ferrite/hello (idle_timeout 1 s), in
# three runs of the node: with FERRITE_SERVICE_STAND_IN=false (the call
# waits for the task), with FERRITE_SERVICE_STANDBY=0 (the call runs on
# the node in a container started for it), and with the defaults (in the
# standby container). Prints a table and writes it to its section of
# docs/benchmarks.md.
#
#   bench/services.sh    # N=5000 SECONDS_MAX=10 WARMUP=200 SCALE_TRIALS=5 [PERF=1]
#
# FERRITE_BENCH_IMAGE=NAME runs Ferrite from that image (its binary the
# release build in target/x86_64-unknown-linux-gnu/release, or FERRITE_BIN) instead of
# building ferrite/ferrite.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=services.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

N=${N:-5000}
SECONDS_MAX=${SECONDS_MAX:-10}
WARMUP=${WARMUP:-200}
SCALE_TRIALS=${SCALE_TRIALS:-5}
ID=bench-svc-$$

IMAGE=${FERRITE_BENCH_IMAGE:-ferrite/ferrite}
log "building the release image, bench/hotclient and the function images"
[[ -n ${FERRITE_BENCH_IMAGE:-} ]] || FERRITE_IMAGE_PROFILE=release scripts/deploy-images.sh ferrite >&2
# The image's static binary serves as the CLI too (no second release build).
FERRITE=${FERRITE_BIN:-$PWD/target/x86_64-unknown-linux-gnu/release/ferrite}
cargo build --release --locked -q --manifest-path bench/hotclient/Cargo.toml
scripts/images.sh hot-hello hello >&2
# The client's container: any image with a glibc as new as the host's.
FERRITE_IMAGE_PROFILE=release scripts/deploy-images.sh postgres >/dev/null
CLIENT=$PWD/bench/hotclient/target/release/hotclient
HOT_IMAGE=ferrite/hot-hello-service:$ID
COLD_IMAGE=ferrite/hello-service:$ID
WORK=$(mktemp -d)
SWARM=

cleanup() {
  local status=$?
  # Stopped, not killed: the node removes the containers it started.
  docker stop -t 30 "$ID" >/dev/null 2>&1 || true
  docker rm -f "$ID" "$ID-proxy" >/dev/null 2>&1 || true
  docker ps -aq --filter "label=org.ferrite.node=$ID" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker service ls -q --filter "label=org.ferrite.owner=$ID" | xargs -r docker service rm >/dev/null 2>&1 || true
  for _ in $(seq 30); do docker network rm "$ID" >/dev/null 2>&1 && break; sleep 1; done
  docker volume rm -f "$ID" >/dev/null 2>&1 || true
  docker rmi -f "$HOT_IMAGE" "$COLD_IMAGE" >/dev/null 2>&1 || true
  # The image the node derived for the plain route, once its task is gone.
  for _ in $(seq 30); do
    docker images -q --filter "label=org.ferrite.owner=$ID" | xargs -r docker rmi -f >/dev/null 2>&1 || true
    [[ -z $(docker images -q --filter "label=org.ferrite.owner=$ID") ]] && break; sleep 1
  done
  if [[ $SWARM == initialised ]]; then swarm_leave; fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
SWARM=$(swarm_ensure)

"$FERRITE" services image ferrite/hot-hello --format http -t "$HOT_IMAGE" >&2
"$FERRITE" services image ferrite/hello -t "$COLD_IMAGE" >&2
docker network create --driver overlay --attachable "$ID" >/dev/null
PORT=$(free_port)
# From inside its container the host is not loopback: the node's /v1 needs
# a key, and the calls below a token signed with it (HS256, one hour).
KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
TOKEN=$(python3 - "$KEY" <<'EOF'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
signed = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps({"exp": int(time.time()) + 3600}).encode())
print(signed + "." + b64(hmac.new(sys.argv[1].encode(), signed.encode(), hashlib.sha256).digest()))
EOF
)
v1() { curl -sf -H "Authorization: Bearer $TOKEN" "$@"; }
URL=http://127.0.0.1:$PORT
ferrite_run() { # [-e NAME=VALUE...]: (re)start the node, its store kept
  if docker inspect "$ID" >/dev/null 2>&1; then docker stop -t 30 "$ID" >/dev/null && docker rm "$ID" >/dev/null; fi
  docker run -d --name "$ID" --network "$ID" -p "127.0.0.1:$PORT:8080" \
    -v /var/run/docker.sock:/var/run/docker.sock -v "$ID:/var/lib/ferrite" \
    -e FERRITE_NODE_ID="$ID" -e FERRITE_SERVICE_OWNER="$ID" -e FERRITE_SERVICE_NETWORK="$ID" \
    -e FERRITE_WATCHDOG_IMAGE="$IMAGE" -e JWT_AUTH_KEY="$KEY" -e LOG_LEVEL=warn "$@" "$IMAGE" >/dev/null
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.2; done
}
ferrite_run

v1 -o /dev/null -X POST "$URL/v1/apps/bench/routes" -d "{\"route\":{\"path\":\"/hello\",
  \"image\":\"$HOT_IMAGE\",\"config\":{\"ferrite_watchdog_concurrency\":\"8\"},
  \"service\":{\"min_replicas\":1,\"max_replicas\":1,\"target_concurrency\":100}}}"
v1 -o /dev/null -X POST "$URL/v1/apps/bench/routes" -d "{\"route\":{\"path\":\"/zero\",
  \"image\":\"$COLD_IMAGE\",\"service\":{\"min_replicas\":0,\"scale_to_zero_after\":1}}}"
v1 -o /dev/null -X POST "$URL/v1/apps/bench/routes" -d "{\"route\":{\"path\":\"/plain\",
  \"image\":\"ferrite/hello\",\"idle_timeout\":1,\"service\":{\"min_replicas\":0,\"scale_to_zero_after\":1}}}"

service() { # field of a route's service in GET /v1/services
  v1 "$URL/v1/services" | python3 -c "import json, sys
s = [s for s in json.load(sys.stdin)['services'] if s['path'] == '$1']
print(json.dumps(s[0]['$2']) if s else 'null')"
}
for _ in $(seq 120); do [[ $(service /hello running) == 1 ]] && break; sleep 0.5; done
TASK=$(service /hello addresses | python3 -c 'import json, sys; print(json.load(sys.stdin)[0])')
log "one task at $TASK"

# The task's watchdog takes calls only with the service's key, which Ferrite
# set on the service: the direct client sends it as Ferrite does.
NAME=$(service /hello service | python3 -c 'import json, sys; print(json.load(sys.stdin))')
WATCHDOG_KEY=$(docker service inspect -f '{{json .Spec.TaskTemplate.ContainerSpec.Env}}' "$NAME" \
  | python3 -c 'import json, sys; print([e.split("=", 1)[1] for e in json.load(sys.stdin) if e.startswith("FERRITE_WATCHDOG_KEY=")][0])')
client() { # clients, url[, header]
  docker run --rm --network "$ID" --pid host -v "$CLIENT:/hotclient:ro" \
    ${3:+-e "HOTCLIENT_HEADER=$3"} ferrite/deploy-base \
    /hotclient http "$2" "$1" "$WARMUP" "$N" "$SECONDS_MAX"
}
# PERF=1: a profile of the node (perf record, call graphs) during the c=8
# run through Ferrite, its hottest symbols printed on stderr.
profile_node() {
  [[ -n ${PERF:-} ]] || return 0
  perf record -q -F 999 -g -p "$(docker inspect -f '{{.State.Pid}}' "$ID")" -o "$WORK/perf.data" \
    -- sleep "$SECONDS_MAX" >/dev/null 2>&1 &
  PERF_PID=$!
}
profile_report() {
  [[ -n ${PERF_PID:-} ]] || return 0
  wait "$PERF_PID" || true
  log "the node's profile during c=8 through Ferrite (self time, by symbol):"
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -"${PERF_TOP:-40}" >&2
  log "by caller of the kernel's time (children, top-level user frames):"
  perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep -E '^ +[0-9]' | head -"${PERF_TOP:-40}" >&2
}

# The bound: what any proxy on this machine costs. HAProxy, a plain HTTP
# proxy with nothing to decide (one backend, connections to it reused),
# between the same client and the same task; its CPU shares the two cores
# with the client and the task as Ferrite's does.
cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 1024
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend calls
  bind :8080
  default_backend task
backend task
  http-request set-header Ferrite-Watchdog-Key $WATCHDOG_KEY
  server task $TASK
EOF
chmod 644 "$WORK/haproxy.cfg"
docker run -d --name "$ID-proxy" --network "$ID" --label "org.ferrite.owner=$ID" \
  -v "$WORK/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" ferrite/haproxy >/dev/null
for c in 1 8; do
  log "c=$c: the task directly"
  client "$c" "http://$TASK/hello" "Ferrite-Watchdog-Key: $WATCHDOG_KEY" >"$WORK/direct$c.json"
  log "c=$c: through HAProxy (a plain proxy)"
  client "$c" "http://$ID-proxy:8080/hello" >"$WORK/proxy$c.json"
  log "c=$c: through Ferrite"
  [[ $c == 8 ]] && profile_node
  client "$c" "http://$ID:8080/r/bench/hello" >"$WORK/ferrite$c.json"
done
profile_report
docker rm -f "$ID-proxy" >/dev/null

from_zero() { # path, file: SCALE_TRIALS first calls at zero, time to first byte
  : >"$WORK/$2.txt"
  for i in $(seq "$SCALE_TRIALS"); do
    for _ in $(seq 120); do [[ $(service "$1" running) == 0 && $(service "$1" replicas) == 0 ]] && break; sleep 0.5; done
    sleep 2
    curl -s -o /dev/null -w '%{time_starttransfer} %{http_code}\n' -X POST -d '{"name":"Zero"}' \
      "$URL/r/bench$1" >>"$WORK/$2.txt"
    log "from zero, $2, trial $i: $(tail -1 "$WORK/$2.txt")"
  done
}
log "load average before the scale-from-zero runs: $(cut -d' ' -f1-3 /proc/loadavg)"
ferrite_run -e FERRITE_SERVICE_STAND_IN=false
from_zero /plain zero-plain-wait
ferrite_run -e FERRITE_SERVICE_STANDBY=0
from_zero /plain zero-plain-started
ferrite_run
from_zero /plain zero-plain-standby
from_zero /zero zero
log "load average after them: $(cut -d' ' -f1-3 /proc/loadavg)"

TABLE=$(python3 - "$WORK" <<'PY'
import json, statistics, sys
work = sys.argv[1]
get = lambda n: json.load(open(f"{work}/{n}.json"))
print("| run | calls/s | p50 ms | p99 ms | errors |")
print("| --- | ---: | ---: | ---: | ---: |")
rows = []
proxied = []
for c in (1, 8):
    d, p, f = get(f"direct{c}"), get(f"proxy{c}"), get(f"ferrite{c}")
    for name, r in ((f"c={c}, the task directly (baseline)", d), (f"c={c}, through HAProxy (a plain proxy)", p),
                    (f"c={c}, through Ferrite", f)):
        print(f"| {name} | {r['rate_per_s']:,.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors'] + r['bad_body']} |")
    rows.append((c, f["p50_ms"] - d["p50_ms"], f["p99_ms"] - d["p99_ms"], f["rate_per_s"] / d["rate_per_s"]))
    proxied.append((c, p["p50_ms"] - d["p50_ms"], p["rate_per_s"] / d["rate_per_s"], f["rate_per_s"] / p["rate_per_s"]))
print()
for c, d50, d99, ratio in rows:
    print(f"- c={c}: Ferrite adds {d50:+.3f} ms at p50 and {d99:+.3f} ms at p99; throughput {ratio:.2f} of the direct calls")
for c, d50, ratio, vs in proxied:
    print(f"- c={c}: HAProxy adds {d50:+.3f} ms at p50; throughput {ratio:.2f} of the direct calls; Ferrite {vs:.2f} of HAProxy")
gaps = open(f"{work}/gaps", "w")
d, f = get("direct8"), get("ferrite8")
gaps.write(f"service route, c=8\t{f['rate_per_s']:,.0f} calls/s\t{d['rate_per_s']:,.0f} calls/s to the task directly\t"
           f"{rows[1][3]:.2f}\t≥ 0.7\n")
p = get("proxy8")
gaps.write(f"a plain proxy (HAProxy) in front of the task, c=8: the bound\t{p['rate_per_s']:,.0f} calls/s\t"
           f"{d['rate_per_s']:,.0f} calls/s to the task directly\t{p['rate_per_s'] / d['rate_per_s']:.2f}\t—\n")
d, f = get("direct1"), get("ferrite1")
gaps.write(f"service route, c=1\tp50 {f['p50_ms']:.3f} ms\tp50 {d['p50_ms']:.3f} ms to the task directly\t"
           f"adds {rows[0][1]:+.3f} ms\tadds ≤ 0.3 ms\n")
def cpu(r):
    top = ", ".join(f"{k} {v:.0f}" for k, v in list(r["cpu_us_per_call_by_process"].items())[:5])
    return f"{r['cpu_us_per_call']:.0f} µs ({top})"
for c in (1, 8):
    print(f"- CPU per call at c={c}, every process on the machine: direct {cpu(get(f'direct{c}'))}; "
          f"through HAProxy {cpu(get(f'proxy{c}'))}; through Ferrite {cpu(get(f'ferrite{c}'))}")
def zero(name):
    trials = [l.split() for l in open(f"{work}/{name}.txt") if l.strip()]
    secs = sorted(float(t) for t, code in trials if code == "200")
    bad = sum(1 for _, code in trials if code != "200")
    return len(trials), secs, bad
for name, what in (("zero", "a service image (run as it is: the call waits for the task), defaults"),
                   ("zero-plain-wait", "a plain image, `FERRITE_SERVICE_STAND_IN=false` (waits for the task, as before)"),
                   ("zero-plain-started", "a plain image, `FERRITE_SERVICE_STANDBY=0` (runs on the node, its container started for it)"),
                   ("zero-plain-standby", "a plain image, defaults (runs on the node, in the standby container)")):
    n, secs, bad = zero(name)
    if secs:
        print(f"- scale from zero, first byte of the first call, {what} ({n} trials): median {statistics.median(secs):.3f} s, "
              f"min {secs[0]:.3f} s, max {secs[-1]:.3f} s" + (f"; {bad} not 200" if bad else ""))
n, secs, bad = zero("zero-plain-standby")
_, before, _ = zero("zero-plain-wait")
if secs and before:
    gaps.write(f"service route at zero replicas, first answer\tmedian {statistics.median(secs):.3f} s\t"
               f"median {statistics.median(before):.3f} s waiting for the task\t—\t≤ 0.3 s\n")
gaps.close()
PY
)
echo "$TABLE"
while IFS=$'\t' read -r -a GAP; do gap_row "${GAP[@]}"; done <"$WORK/gaps"

python3 - "$TABLE" "$(nproc)" "$(date -u +%Y-%m-%d)" <<'PY' |
import sys
table, cores, day = sys.argv[1:]
section = (f"## Routes as Swarm services (`bench/services.sh`)\n\n{day}, {cores} cores, release image; Ferrite "
           "as a container on an overlay network of the machine's single-node Swarm; the client "
           "(bench/hotclient) in a container on the same network; `ferrite/hot-hello` as a service image "
           "(the watchdog keeping 8 hot processes), one replica.\n\n"
           f"{table}\n\n"
           "Through Ferrite a call makes two HTTP exchanges over the overlay network instead of one "
           "(client to Ferrite, then Ferrite to the task over a pooled keep-alive connection: one "
           "connection per task, reused), and is recorded in the history. On 2 cores that is CPU: "
           "Ferrite's share per call (both exchanges' socket and VXLAN work run in its system calls) "
           "is about 2.5 times its 88 µs per hot call over loopback and a unix socket "
           "(bench/hot.sh), and it shares the cores with the client and the task. A call waiting "
           "for a scale from zero waits for Swarm to schedule and start the task (most of it) and "
           "the watchdog to bind its port; a call to a route of a plain image runs on the node "
           "meanwhile (docs/services.md, \"Scale from zero\").\n")
sys.stdout.write(section)
PY
  write_doc_section "Routes as Swarm services (\`bench/services.sh\`)"
log "written to docs/benchmarks.md"
