#!/usr/bin/env bash
# Hot calls through HAProxy with 1, 2 and 3 Ferrite nodes (sharing PostgreSQL
# and Redis, as in production; a throwaway cluster from scripts/postgres.sh), against the same routes called on one
# node directly. HAProxy hashes /r/ by URI, so each route lands on one node:
# ROUTES hot routes (ferrite/hot-hello, max_concurrency 2) spread the load,
# each driven by its own bench/hotclient with CLIENTS connections; calls/s is
# the sum over the routes. Prints a table and writes it to its section of
# docs/benchmarks.md. About 2 minutes.
#
#   bench/cluster.sh     # ROUTES=6 CLIENTS=2 SECONDS_MAX=8
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=cluster.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

ROUTES=${ROUTES:-6}
CLIENTS=${CLIENTS:-2}
SECONDS_MAX=${SECONDS_MAX:-8}
IMAGE=ferrite/hot-hello
NODE_PREFIX=bench-cluster
log "building ferrite, bench/hotclient and the image"
build hot-hello
for tool in redis-server haproxy; do
  command -v "$tool" >/dev/null || { log "$tool is missing: install Debian's $tool package"; exit 1; }
done
WORK=$(mktemp -d)
KEPT=
NODE_PIDS=()
HAPROXY_PID=
REDIS_PID=

leftovers() { docker ps -a --filter "label=org.ferrite.node" --format '{{.Label "org.ferrite.node"}}' | grep -c "^$NODE_PREFIX" || true; }

cleanup() {
  local status=$? left
  stop_pid "$HAPROXY_PID"
  stop_nodes
  stop_pid "$REDIS_PID"
  exec 3>&- # PostgreSQL stops
  left=$(leftovers)
  if [[ $left -ne 0 ]]; then
    log "$left container(s) of $NODE_PREFIX-* left; removing them"
    docker ps -a --filter label=org.ferrite.node --format '{{.ID}} {{.Label "org.ferrite.node"}}' \
      | awk -v p="$NODE_PREFIX" 'index($2, p) == 1 {print $1}' | xargs -r docker rm -f >/dev/null
    status=1
  fi
  # A run with errors keeps its logs and the clients' reports to look into.
  if [[ -n $KEPT ]]; then
    cp -a "$WORK" "$KEPT" && log "the logs of this run are kept in $KEPT"
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

# PostgreSQL lives as long as fd 3 stays open (see scripts/postgres.sh).
exec 3> >(scripts/postgres.sh run >"$WORK/pg.out")
for _ in $(seq 300); do grep -q '^POSTGRES_URL=' "$WORK/pg.out" 2>/dev/null && break; sleep 0.1; done
PG_BASE=$(sed -n 's|^POSTGRES_URL=\(.*\)/postgres$|\1|p' "$WORK/pg.out")
[[ -n $PG_BASE ]] || { log "PostgreSQL did not start"; exit 1; }
psql "$PG_BASE/postgres" -q -c "CREATE DATABASE bench"
DB_URL="$PG_BASE/bench?sslmode=disable"

REDIS_PORT=$(free_port)
start_redis

# start_nodes N: N nodes on one store and one Redis; their URLs in NODE_URLS.
start_nodes() {
  local n=$1 i port up
  NODE_URLS=()
  for i in $(seq "$n"); do
    port=$(free_port)
    FERRITE_NODE_ID=$NODE_PREFIX-$i LOG_LEVEL=warn MQ_URL="redis://127.0.0.1:$REDIS_PORT/bench" \
      "$BIN" server --host 127.0.0.1 --port "$port" --db-url "$DB_URL" \
      >/dev/null 2>>"$WORK/server.log" &
    NODE_PIDS+=($!)
    up=
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && { up=1; break; }; sleep 0.1; done
    [[ -n $up ]] || { log "node $i did not come up:"; cat "$WORK/server.log" >&2; exit 1; }
    NODE_URLS+=("http://127.0.0.1:$port")
  done
}

# start_haproxy: in front of NODE_URLS; its URL in LB.
start_haproxy() {
  local port
  port=$(free_port)
  haproxy_config "$port" "${NODE_URLS[@]#http://}" >"$WORK/haproxy.cfg"
  haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 &
  HAPROXY_PID=$!
  LB=http://127.0.0.1:$port
  for _ in $(seq 100); do curl -sf "$LB/version" >/dev/null && return 0; sleep 0.1; done
  log "haproxy did not come up"; exit 1
}

stop_haproxy() { stop_pid "$HAPROXY_PID"; HAPROXY_PID=; }

# drive NAME BASE_URL: every route at once, one hotclient each.
drive() {
  local name=$1 base=$2 r pids=()
  for r in $(seq "$ROUTES"); do
    "$CLIENT" http "$base/r/bench/hot$r" "$CLIENTS" 100 1000000 "$SECONDS_MAX" >"$WORK/$name-$r.json" &
    pids+=($!)
  done
  for r in "${pids[@]}"; do wait "$r"; done
}

# Routes are created once; the store keeps them for every run.
start_nodes 1
for r in $(seq "$ROUTES"); do
  curl -sf -o /dev/null -X POST "${NODE_URLS[0]}/v1/apps/bench/routes" \
    -d "{\"route\":{\"path\":\"/hot$r\",\"image\":\"$IMAGE\",\"format\":\"http\",\"max_concurrency\":2}}"
done
log "direct: $ROUTES routes x $CLIENTS clients on one node, ${SECONDS_MAX} s"
drive direct "${NODE_URLS[0]}"
for n in 1 2 3; do
  if [[ $n -gt 1 ]]; then stop_nodes; start_nodes "$n"; fi
  start_haproxy
  log "haproxy over $n node(s): $ROUTES routes x $CLIENTS clients, ${SECONDS_MAX} s"
  drive "lb$n" "$LB"
  stop_haproxy
done
stop_nodes
LEFT=$(leftovers)

TABLE=$(python3 - "$WORK" "$ROUTES" "$CLIENTS" "$LEFT" <<'PY'
import json, sys
work, routes, clients, left = sys.argv[1:]
def run(name):
    parts = [json.load(open(f"{work}/{name}-{r}.json")) for r in range(1, int(routes) + 1)]
    rate = sum(p["rate_per_s"] for p in parts)
    errors = sum(p["errors"] for p in parts)
    p50 = sorted(p["p50_ms"] for p in parts if p["p50_ms"] is not None)
    return rate, errors, p50[len(p50) // 2] if p50 else None
base, _, _ = run("direct")
print(f"| run ({routes} routes x {clients} clients) | calls/s | median p50 ms | errors | vs direct |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, label in [("direct", "one node, no proxy (baseline)"), ("lb1", "HAProxy, 1 node"),
                    ("lb2", "HAProxy, 2 nodes"), ("lb3", "HAProxy, 3 nodes")]:
    rate, errors, p50 = run(name)
    print(f"| {label} | {rate:,.0f} | {p50:.3f} | {errors} | {rate / base:.2f} |")
    if name == "lb1":
        with open(f"{work}/gap", "w") as f:
            f.write(f"HAProxy in front of 1 node, {routes} routes x {clients} clients\t{rate:,.0f} calls/s\t"
                    f"{base:,.0f} calls/s to the node directly\t{rate / base:.2f}\t≥ 0.9\n")
# Each client samples the whole machine over the same seconds and divides
# by its own calls: scale to every client's calls for the run's figure.
def cpu(name):
    parts = [json.load(open(f"{work}/{name}-{r}.json")) for r in range(1, int(routes) + 1)]
    first, calls = parts[0], sum(p["ok"] for p in parts)
    if not calls or first["cpu_us_per_call"] is None:
        return None, {}
    share = first["ok"] / calls
    return first["cpu_us_per_call"] * share, {k: v * share for k, v in first["cpu_us_per_call_by_process"].items()}
print()
for name, label in [("direct", "one node, no proxy"), ("lb1", "HAProxy, 1 node")]:
    total, procs = cpu(name)
    if total is not None:
        top = ", ".join(f"{k} {v:.0f}" for k, v in list(procs.items())[:6])
        print(f"- CPU per call, every process on the machine, {label}: {total:.0f} µs ({top})")
direct, _ = cpu("direct")
proxied, procs = cpu("lb1")
if direct and proxied:
    print(f"- the CPU bound: with the cores saturated, HAProxy's hop can give at most {direct / proxied:.2f} of the "
          f"direct rate on this machine (HAProxy itself {procs.get('haproxy', 0):.0f} µs per call)")
print(f"\nContainers left after the nodes stopped: {left}.")
PY
)
echo "$TABLE"
if grep -q '"errors": *[1-9]' "$WORK"/*.json; then
  KEPT=${TMPDIR:-/tmp}/ferrite-cluster-$(date -u +%Y%m%dT%H%M%S)
  python3 - "$WORK" <<'PY'
import glob, json, os, sys
for path in sorted(glob.glob(f"{sys.argv[1]}/*.json")):
    report = json.load(open(path))
    if report["errors"]:
        print(f"{os.path.basename(path)}: {report['errors']} errors, statuses {report.get('statuses')}, first error {report.get('first_error')}", file=sys.stderr)
PY
fi
IFS=$'\t' read -r -a GAP <"$WORK/gap"
gap_row "${GAP[@]}"

python3 - "$TABLE" "$(nproc)" "$(date -u +%Y-%m-%d)" <<'PY' |
import sys
table, cores, day = sys.argv[1:]
section = (f"## Nodes behind HAProxy (`bench/cluster.sh`)\n\n{day}, {cores} cores, release build; nodes share "
           "one PostgreSQL and one Redis, all on this machine with HAProxy and the clients. HAProxy hashes "
           "`/r/` by URI, so each route stays on one node.\n\n"
           f"{table}\n\n"
           "On one machine more nodes bring no CPU: the nodes, their hot containers, HAProxy, PostgreSQL, "
           "Redis and the clients share the same cores, so extra nodes only add processes to schedule. "
           "HAProxy is a second HTTP hop, and with `http-reuse never` (so that a request is never written "
           "to an idle connection of a node that just died, which could not be retried safely) every call "
           "opens a new loopback connection to a node. On separate machines each node brings its own cores.\n")
sys.stdout.write(section)
PY
  write_doc_section "Nodes behind HAProxy (\`bench/cluster.sh\`)"
log "written to docs/benchmarks.md"
