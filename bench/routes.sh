#!/usr/bin/env bash
# Route lookup benchmark: calls spread evenly over ROUTES routes against the
# same calls to one route, on one server, measured in the same run. Every
# route has a `jwt_key`, so each call is looked up (route and app, from the
# cache or the database) and then refused with 401 for want of a token: what
# is measured is the lookup path, not a function. Twice, each store with its
# default route cache TTL (10 minutes wherever changes are heard): on
# PostgreSQL without Redis (its nodes hear each other over the change bus on
# PostgreSQL; before that bus, their TTL was 1 s and spread calls mostly
# read the database), then on embedded SQLite. Each time after one warm-up
# pass over every route. The client is bench/hotclient (HOTCLIENT_ROUTES
# spreads its calls, round robin over the routes, HOTCLIENT_EXPECT=401).
# PostgreSQL is scripts/postgres.sh's throwaway cluster (fsync off: only
# reads are measured). Prints a table and writes it to its section of
# docs/benchmarks.md. About 2 minutes after the builds.
#
#   bench/routes.sh    # ROUTES=50000 CLIENTS=8 SECONDS_MAX=10
set -euo pipefail
cd "$(dirname "$0")/.."

ROUTES=${ROUTES:-50000}
CLIENTS=${CLIENTS:-8}
SECONDS_MAX=${SECONDS_MAX:-10}
NODE=bench-routes
BENCH=routes.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

log "building ferrite, bench/hotclient and the image"
build hello
WORK=$(mktemp -d)
PID=

cleanup() {
  local status=$?
  stop_server
  exec 3>&- # PostgreSQL stops (scripts/postgres.sh)
  sweep_node_containers || status=1
  rm -rf "$WORK"
  exit "$status"
}
exec 3>/dev/null
trap cleanup EXIT

require_no_node_containers
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"

# PostgreSQL: scripts/postgres.sh lives as long as fd 3 stays open.
exec 3> >(scripts/postgres.sh run >"$WORK/pg.out")
for _ in $(seq 300); do grep -q '^POSTGRES_URL=' "$WORK/pg.out" 2>/dev/null && break; sleep 0.1; done
PG_BASE=$(sed -n 's|^POSTGRES_URL=\(.*\)/postgres$|\1|p' "$WORK/pg.out")
[[ -n $PG_BASE ]] || { log "PostgreSQL did not start"; exit 1; }
psql "$PG_BASE/postgres" -q -c "CREATE DATABASE bench_routes"
PG_VERSION=$(psql "$PG_BASE/postgres" -tAq -c "SHOW server_version" | cut -d' ' -f1)

# start_server NAME DB_URL: the node on that store, its embedded queue in
# $WORK (no Redis), every setting at its default.
start_server() {
  local up=
  FERRITE_NODE_ID=$NODE LOG_LEVEL=warn MQ_URL="sqlite://$WORK/$1-queue.db" \
    "$BIN" server --host 127.0.0.1 --port "$PORT" --db-url "$2" \
    >/dev/null 2>>"$WORK/server.log" &
  PID=$!
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && { up=1; break; }; sleep 0.1; done
  [[ -n $up ]] || { log "the server did not come up:"; cat "$WORK/server.log" >&2; exit 1; }
}

# create_routes: the app, /one and $ROUTES more, through the API.
create_routes() {
  log "creating $ROUTES routes through the API ($CLIENTS clients)"
  local created_at
  created_at=$(date +%s)
  python3 - "$PORT" "$ROUTES" "$CLIENTS" <<'PY'
import http.client, json, sys, threading
port, routes, clients = (int(a) for a in sys.argv[1:])
def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse(); text = r.read()
    if r.status not in (200, 201):
        sys.exit(f"POST {path}: {r.status} {text[:200]!r}")
conn = http.client.HTTPConnection("127.0.0.1", port)
post(conn, "/v1/apps", {"app": {"name": "bench"}})
route = lambda path: {"route": {"path": path, "image": "ferrite/hello", "jwt_key": "bench-secret"}}
post(conn, "/v1/apps/bench/routes", route("/one"))
failed = []
def create(first):
    c = http.client.HTTPConnection("127.0.0.1", port)
    try:
        for i in range(first, routes, clients):
            post(c, "/v1/apps/bench/routes", route(f"/r{i}"))
    except SystemExit as e:
        failed.append(str(e))
threads = [threading.Thread(target=create, args=(t,)) for t in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
if failed: sys.exit(failed[0])
PY
  log "created in $(($(date +%s) - created_at)) s"
}

# measure NAME ROUTES_OR_EMPTY PATH WARMUP: one hotclient run into $WORK/NAME.json.
measure() {
  local name=$1 routes=$2 path=$3 warmup=$4
  log "$name: $CLIENTS clients, ${SECONDS_MAX} s"
  HOTCLIENT_EXPECT=401 HOTCLIENT_ROUTES=$routes "$CLIENT" http "$URL/r/bench$path" \
    "$CLIENTS" "$warmup" 100000000 "$SECONDS_MAX" >"$WORK/$name.json"
}
# HOTCLIENT_ROUTES must be unset, not empty, for one route.
one() { env -u HOTCLIENT_ROUTES HOTCLIENT_EXPECT=401 "$CLIENT" http "$URL/r/bench/one" "$CLIENTS" 200 100000000 "$SECONDS_MAX" >"$WORK/$1.json"; }

# run STORE DB_URL: the routes on that store, then its two measures.
run() {
  log "$1: one route, then spread over $ROUTES routes"
  start_server "$1" "$2"
  create_routes
  one "one_$1"
  # A warm-up pass reaches every route once before the measured run.
  measure "spread_$1" "$ROUTES" /r $((ROUTES / CLIENTS + 1))
  stop_server
}

run pg "$PG_BASE/bench_routes?sslmode=disable"
run sqlite "sqlite://$WORK/f.db"

MEM_GIB=$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
DOCKER_VERSION=$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)
TABLE=$(python3 - "$WORK" "$ROUTES" <<'PY'
import json, sys
work, routes = sys.argv[1], int(sys.argv[2])
get = lambda name: json.load(open(f"{work}/{name}.json"))
runs = {n: get(n) for n in ("one_pg", "spread_pg", "one_sqlite", "spread_sqlite")}
for n, r in runs.items():
    if not r["ok"]:
        sys.exit(f"no 401s in run {n}: {json.dumps(r)}")
def run(r):
    bad = r["errors"] + r["bad_body"]
    return (f"{r['rate_per_s']:,.0f} calls/s, p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
            + (f", **{bad} errors** {r['statuses']}" if bad else ""))
print("| measure | value |\n| --- | --- |")
for store, name in (("pg", "PostgreSQL without Redis (change bus over PostgreSQL)"), ("sqlite", "SQLite")):
    one, spread = runs[f"one_{store}"], runs[f"spread_{store}"]
    ratio = spread["rate_per_s"] / one["rate_per_s"]
    print(f"| {name}, TTL 10 min: one route | {run(one)} |")
    print(f"| {name}, TTL 10 min: spread over {routes:,} routes | {run(spread)} |")
    print(f"| {name}, TTL 10 min: spread / one route (target ≥ 0.8) | {ratio:.2f} |")
    with open(f"{work}/gap_{store}", "w") as f:
        f.write(f"{spread['rate_per_s']:.0f}\t{one['rate_per_s']:.0f}\t{ratio:.2f}\n")
PY
)
echo "$TABLE"
for store in pg sqlite; do
  IFS=$'\t' read -r spread one ratio <"$WORK/gap_$store"
  where=$([[ $store == pg ]] && echo "PostgreSQL without Redis (change bus over PostgreSQL)" || echo "SQLite")
  gap_row "calls over $ROUTES routes, c=$CLIENTS, cache TTL 10 min, $where" "$spread calls/s" "$one calls/s to one route" "$ratio" "≥ 0.8"
done

write_doc_section "Route lookup over many routes (\`bench/routes.sh\`)" <<DOC
## Route lookup over many routes (\`bench/routes.sh\`)

$(date -u +%Y-%m-%d), $(nproc) cores, $MEM_GIB GiB memory, Docker $DOCKER_VERSION, release build, one node on
PostgreSQL $PG_VERSION without Redis (\`scripts/postgres.sh\`, on the same host), then on embedded SQLite, every
setting at its default but \`LOG_LEVEL=warn\`, $CLIENTS clients (\`bench/hotclient\`, keep-alive). Each call is
looked up and refused with 401 (the routes have a \`jwt_key\`, the calls no token), so only the lookup path is
measured.

$TABLE
DOC
log "written to docs/benchmarks.md"
