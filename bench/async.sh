#!/usr/bin/env bash
# Async call benchmark, on the embedded default (SQLite store, SQLite queue)
# and on PostgreSQL (fsync and synchronous_commit on) + Redis (appendfsync
# always), both started here on free ports:
#  - enqueue: 202s per second for POST /r/bench/async (ferrite/hot-hello,
#    format http, type async) with the workers off, so only accepting is
#    measured (record + durable push, many calls per commit), at CLIENTS
#    and at CLIENTS_HIGH client connections;
#  - baseline of the same server at the same concurrency: GET /version,
#    its cheapest request (hotclient with HOTCLIENT_METHOD=GET); the ratio
#    enqueue / GET /version is what issue 18 targets (>= 0.5);
#  - drain: the node restarted with its workers on runs what was queued;
#    async calls per second from the restart until none is queued or running;
#  - sync baseline (embedded): the same function called sync (hot,
#    max_concurrency 8) at CLIENTS.
# The client is bench/hotclient (HOTCLIENT_EXPECT=202 counts 202s). Prints a
# table, writes it to its section of docs/benchmarks.md, and one gap_row per
# (configuration, concurrency). About 1.5 minutes after the builds.
#
#   bench/async.sh     # CLIENTS=8 CLIENTS_HIGH=64 N=1500 SECONDS_MAX=10
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-8}
CLIENTS_HIGH=${CLIENTS_HIGH:-64}
N=${N:-1500}                   # enqueued calls per client at CLIENTS (N x CLIENTS at each concurrency)
SECONDS_MAX=${SECONDS_MAX:-10} # each measured run stops after this many seconds anyway
NODE=bench-async
IMAGE=ferrite/hot-hello
BENCH=async.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

log "building ferrite, bench/hotclient and the image"
build hot-hello
command -v redis-server >/dev/null || { log "redis-server is missing (apt-get install redis-server)"; exit 1; }
WORK=$(mktemp -d)
PID=
REDIS_PID=
exec 3>/dev/null

cleanup() {
  local status=$?
  stop_server
  stop_pid "$REDIS_PID"
  exec 3>&- # PostgreSQL stops (scripts/postgres.sh)
  sweep_node_containers || status=1
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

require_no_node_containers

REDIS_PORT=$(free_port)
start_redis

# PostgreSQL: scripts/postgres.sh lives as long as fd 3 stays open. It runs
# with fsync off (for tests); the bench turns durability back on, so that a
# commit costs what it costs in production.
exec 3> >(scripts/postgres.sh run >"$WORK/pg.out")
for _ in $(seq 300); do grep -q '^POSTGRES_URL=' "$WORK/pg.out" 2>/dev/null && break; sleep 0.1; done
PG_BASE=$(sed -n 's|^POSTGRES_URL=\(.*\)/postgres$|\1|p' "$WORK/pg.out")
[[ -n $PG_BASE ]] || { log "PostgreSQL did not start"; exit 1; }
for setting in "fsync = on" "synchronous_commit = on" "full_page_writes = on"; do
  psql "$PG_BASE/postgres" -q -c "ALTER SYSTEM SET $setting"
done
psql "$PG_BASE/postgres" -q -c "SELECT pg_reload_conf()" >/dev/null
psql "$PG_BASE/postgres" -q -c "CREATE DATABASE bench_async"
PG_URL="$PG_BASE/bench_async?sslmode=disable"

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"

# start_server NAME MQ_URL WORKERS [DB_URL]: a node on $WORK/NAME's data
# (and its SQLite store there unless DB_URL is given). The
# enqueue run queues up to CLIENTS x N calls of one app with the workers off,
# more than the default cap on queued calls per app (10,000): the cap is
# raised above that, not switched off, so its check stays in what is measured.
start_server() {
  local name=$1 mq=$2 workers=$3 db=${4:-sqlite://$WORK/$1/f.db} up=
  FERRITE_NODE_ID=$NODE LOG_LEVEL=warn MQ_URL=$mq FERRITE_ASYNC_CONCURRENCY=$workers \
    FERRITE_APP_MAX_QUEUED=100000000 \
    "$BIN" server --host 127.0.0.1 --port "$PORT" --db-url "$db" \
    >/dev/null 2>>"$WORK/server.log" 3>&- &
  PID=$!
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && { up=1; break; }; sleep 0.1; done
  [[ -n $up ]] || { log "the server did not come up:"; cat "$WORK/server.log" >&2; exit 1; }
}

# count STATUS: async calls of app bench in that state (following the pages).
count() {
  python3 - "$URL" "$1" <<'PY'
import json, sys, urllib.request
url, status = sys.argv[1:]
total, cursor = 0, ""
while True:
    page = json.load(urllib.request.urlopen(f"{url}/v1/apps/bench/calls?path=/async&status={status}&per_page=1000&cursor={cursor}"))
    total += len(page["calls"])
    if status != "success" and total:
        break  # "any left?" is all the drain loop asks
    cursor = page.get("next_cursor")
    if not cursor:
        break
print(total)
PY
}

# measure NAME MQ_URL [DB_URL]: GET /version and enqueue at CLIENTS and
# CLIENTS_HIGH with workers off, then drain with workers on.
measure() {
  local name=$1 mq=$2 db=${3:-} began queued=0 c n
  mkdir -p "$WORK/$name"
  start_server "$name" "$mq" 0 "$db"
  curl -sf -o /dev/null -X POST "$URL/v1/apps/bench/routes" \
    -d "{\"route\":{\"path\":\"/async\",\"image\":\"$IMAGE\",\"format\":\"http\",\"type\":\"async\",\"max_concurrency\":8}}"
  if [[ $name == embedded ]]; then
    curl -sf -o /dev/null -X POST "$URL/v1/apps/bench/routes" \
      -d "{\"route\":{\"path\":\"/sync\",\"image\":\"$IMAGE\",\"format\":\"http\",\"max_concurrency\":8}}"
    log "baseline: sync hot calls, $CLIENTS clients x $N (or ${SECONDS_MAX} s)"
    "$CLIENT" http "$URL/r/bench/sync" "$CLIENTS" 200 "$N" "$SECONDS_MAX" >"$WORK/sync.json"
  fi
  for c in "$CLIENTS" "$CLIENTS_HIGH"; do
    log "$name: GET /version, $c clients x $N (or ${SECONDS_MAX} s)"
    HOTCLIENT_METHOD=GET "$CLIENT" http "$URL/version" "$c" 20 "$N" "$SECONDS_MAX" >"$WORK/version-$name-$c.json"
    # The same number of calls at each concurrency (N x CLIENTS): the drain
    # then runs a backlog of a size that does not grow with CLIENTS_HIGH.
    n=$((N * CLIENTS / c))
    log "$name: enqueue $c clients x $n (or ${SECONDS_MAX} s), workers off"
    HOTCLIENT_EXPECT=202 "$CLIENT" http "$URL/r/bench/async" "$c" 0 "$n" "$SECONDS_MAX" >"$WORK/enqueue-$name-$c.json"
    n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok"])' "$WORK/enqueue-$name-$c.json")
    queued=$((queued + n))
  done
  stop_server
  log "$name: drain $queued queued calls with the workers on"
  began=$(date +%s.%N)
  start_server "$name" "$mq" 16 "$db"
  until [[ $(count queued) -eq 0 && $(count running) -eq 0 ]]; do sleep 0.2; done
  python3 -c 'import sys, time; print(time.time() - float(sys.argv[1]))' "$began" >"$WORK/drain-$name.secs"
  echo "$queued" >"$WORK/drain-$name.calls"
  count success >"$WORK/drain-$name.success"
  stop_server
}

measure embedded ""
measure pg-redis "redis://127.0.0.1:$REDIS_PORT/bench-$$" "$PG_URL"
LEFT=$(node_containers)

TABLE=$(python3 - "$WORK" "$LEFT" "$CLIENTS" "$CLIENTS_HIGH" <<'PY'
import json, sys
work, left, low, high = sys.argv[1:]
get = lambda name: json.load(open(f"{work}/{name}.json"))
read = lambda name: open(f"{work}/{name}").read().strip()
names = {"embedded": "embedded (SQLite + SQLite)", "pg-redis": "PostgreSQL + Redis"}
fmt = lambda v: "-" if v is None else f"{v:.3f}"
print("| run | clients | calls/s | p50 ms | p99 ms | errors | GET /version /s | enqueue / version |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
sync = get("sync")
print(f"| sync hot calls, embedded | {low} | {sync['rate_per_s']:,.0f} | {fmt(sync['p50_ms'])} | {fmt(sync['p99_ms'])} | {sync['errors']} | - | - |")
for q, name in names.items():
    for c in (low, high):
        e, v = get(f"enqueue-{q}-{c}"), get(f"version-{q}-{c}")
        print(f"| enqueue (202s), {name} | {c} | {e['rate_per_s']:,.0f} | {fmt(e['p50_ms'])} | {fmt(e['p99_ms'])} | {e['errors']} | {v['rate_per_s']:,.0f} | {e['rate_per_s'] / v['rate_per_s']:.3f} |")
for q, name in names.items():
    secs, calls, ok = float(read(f"drain-{q}.secs")), int(read(f"drain-{q}.calls")), int(read(f"drain-{q}.success"))
    print(f"| drain, {name}: {ok}/{calls} succeeded in {secs:.1f} s | 16 workers | {calls / secs:,.0f} | - | - | {calls - ok} | - | - |")
print(f"\nContainers of the node left after shutdown: {left}.")
PY
)
echo "$TABLE"

python3 - "$TABLE" "$(nproc)" "$(date -u +%Y-%m-%d)" <<'PY' | write_doc_section "Async calls (\`bench/async.sh\`)"
import sys
table, cores, day = sys.argv[1:]
section = (f"## Async calls (`bench/async.sh`)\n\n{day}, {cores} cores, release build. Embedded: SQLite store "
           "and SQLite queue. PostgreSQL (fsync and synchronous_commit on) and Redis 7 (appendfsync "
           "always) on the same machine. Enqueue is measured with the workers off; its baseline is the "
           "same server's `GET /version` at the same number of clients (issue 18's target: at least "
           "0.5 of it). Drain restarts the node with 16 workers and times it until nothing is queued "
           "or running (hot-hello, max_concurrency 8, hot containers started during the drain).\n\n"
           f"{table}\n\n"
           "Async calls are accepted by group commit (`asynchronous/intake.rs`): the calls that arrive "
           "while a batch is being written form the next batch, recorded in one store transaction and "
           "queued in one atomic push, and each client is answered 202 once its batch is durable. "
           "One batch in flight on SQLite (one writer per file), up to four on PostgreSQL + Redis, "
           "whose round trips overlap.\n")
sys.stdout.write(section)
PY
log "written to docs/benchmarks.md"

python3 - "$WORK" "$CLIENTS" "$CLIENTS_HIGH" <<'PY' | while IFS=$'\t' read -r path figure baseline ratio; do gap_row "$path" "$figure" "$baseline" "$ratio" "≥ 0.5"; done
import json, sys
work, low, high = sys.argv[1:]
get = lambda name: json.load(open(f"{work}/{name}.json"))
for q, name in (("embedded", "embedded"), ("pg-redis", "Redis + PostgreSQL")):
    for c in (low, high):
        e, v = get(f"enqueue-{q}-{c}")["rate_per_s"], get(f"version-{q}-{c}")["rate_per_s"]
        print(f"async enqueue, {name}, c={c}\t{e:.0f} calls/s\t{v:.0f} calls/s GET /version\t{e / v:.2f}")
PY
