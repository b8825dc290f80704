#!/usr/bin/env bash
# A short chaos run: two Ferrite nodes behind HAProxy (health checks on),
# sharing PostgreSQL and Redis (appendonly, appendfsync always), running
# their functions on a private Docker engine (scripts/dockerd.sh), under mixed
# load the whole time (bench/chaosload.py: sync cold, sync hot and async
# calls). Every GAP_MIN..GAP_MAX seconds one fault, dealt at random from a
# shuffled deck of the five kinds, is injected and then repaired:
#   engine         the private engine stopped for 3-6 s, then started again
#   postgres       PostgreSQL stopped (fast shutdown) for 3-6 s, then started
#   redis-restart  Redis killed with SIGKILL, started again 1 s later (its AOF)
#   redis-stop     Redis frozen with SIGSTOP for 3-6 s, then SIGCONT
#   node-kill      a node killed with SIGKILL, started again 2 s later with
#                  the same node id and data directory
# A node that exits by itself is started again and listed as `node-exit`.
# Then it waits for the async calls to settle, stops the nodes and counts the
# containers left on the engine. Prints calls made, succeeded, failed with a
# retryable status and otherwise, async calls acknowledged / completed / lost
# / started more than once, leaked containers and the faults with their
# times; writes the table to its section of docs/benchmarks.md. Exits 1 when
# an acknowledged async call was lost or a container leaked.
#
# Needs root (the private engine). Not part of bench/run.sh: run it alone.
#
#   bench/chaos.sh     # DURATION=240 SEED=<random> GAP_MIN=20 GAP_MAX=40 SETTLE=120 LOGS=
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=chaos.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

DURATION=${DURATION:-240} # seconds of load and faults
SEED=${SEED:-$((($$ + $(date +%s)) % 32768))}
GAP_MIN=${GAP_MIN:-20} # seconds between a recovery and the next fault
GAP_MAX=${GAP_MAX:-40}
SETTLE=${SETTLE:-120} # most seconds to wait for async calls to end
LOGS=${LOGS:-}        # a directory to keep the nodes' logs, the calls and the faults in
APP=chaos
now() { date +%s.%N; }

[[ $(id -u) -eq 0 ]] || { log "run as root: the private Docker engine needs it"; exit 1; }
for tool in dockerd redis-server haproxy psql; do
  command -v "$tool" >/dev/null || { log "$tool is missing"; exit 1; }
done
log "building ferrite and the images"
release_ferrite
scripts/images.sh hello hot-hello >&2

# Short: the engine's socket path must stay under 108 bytes.
WORK=$(mktemp -d /tmp/chaos.XXXXXX)
ENGINE=$WORK/e
NODES=(1 2)
NODE_PIDS=()
NODE_PORTS=()
HAPROXY_PID=
REDIS_PID=
LOAD_PID=

cleanup() {
  local status=$?
  stop_pid "$LOAD_PID"
  stop_pid "$HAPROXY_PID"
  stop_nodes
  if [[ -n $REDIS_PID ]]; then
    kill -CONT "$REDIS_PID" 2>/dev/null || true
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  if [[ -n $LOGS && -n ${PG_DATA:-} ]]; then
    mkdir -p "$LOGS" && cp "$PG_DATA/../postgres.log" "$LOGS/" 2>/dev/null || true
  fi
  exec 3>&- # PostgreSQL stops (scripts/postgres.sh), also after a restart here: same data directory
  scripts/dockerd.sh stop "$ENGINE" || true
  if [[ -n $LOGS ]]; then
    mkdir -p "$LOGS" && cp "$WORK"/*.log "$ENGINE/dockerd.log" "$WORK"/{samples,faults,async.json} "$LOGS/" 2>/dev/null || true
  elif [[ $status -ne 0 ]]; then
    for f in "$WORK"/node*.log; do
      [[ -f $f ]] && { log "last lines of $f:"; tail -n 15 "$f" >&2; }
    done
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Ports are picked before RANDOM is seeded (free_port draws from it), so the
# faults depend on the seed alone.
REDIS_PORT=$(free_port)
LB_PORT=$(free_port)
for i in "${NODES[@]}"; do NODE_PORTS[$i]=$(free_port); done
RANDOM=$SEED
log "seed $SEED (SEED=$SEED deals the same faults), load for at least $DURATION s"

# --- the private engine, with the function images
scripts/dockerd.sh start "$ENGINE" >/dev/null
DOCKER_HOST_PRIVATE=unix://$ENGINE/docker.sock
docker save ferrite/hello:latest ferrite/hot-hello:latest | docker -H "$DOCKER_HOST_PRIVATE" load >/dev/null
engine_containers() { docker -H "$DOCKER_HOST_PRIVATE" ps -aq --filter label=org.ferrite.managed | wc -l; }

# --- PostgreSQL: scripts/postgres.sh lives as long as fd 3 stays open. Its
# settings are written to postgresql.auto.conf, so that `pg_ctl start`
# without options brings the same server back after a stop here.
exec 3> >(scripts/postgres.sh run >"$WORK/pg.out")
for _ in $(seq 300); do grep -q '^POSTGRES_URL=' "$WORK/pg.out" 2>/dev/null && break; sleep 0.1; done
PG_BASE=$(sed -n 's|^POSTGRES_URL=\(.*\)/postgres$|\1|p' "$WORK/pg.out")
[[ -n $PG_BASE ]] || { log "PostgreSQL did not start"; exit 1; }
PG_DATA=$(psql "$PG_BASE/postgres" -Atq -c 'SHOW data_directory')
for setting in listen_addresses port unix_socket_directories max_connections fsync synchronous_commit full_page_writes; do
  psql "$PG_BASE/postgres" -q -c "ALTER SYSTEM SET $setting = '$(psql "$PG_BASE/postgres" -Atq -c "SHOW $setting")'"
done
psql "$PG_BASE/postgres" -q -c "CREATE DATABASE chaos"
DB_URL="$PG_BASE/chaos?sslmode=disable"
pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
# Without fd 3: a server holding it would keep scripts/postgres.sh waiting.
pg_ctl() { runuser -u postgres -- "$pg_bin/pg_ctl" -D "$PG_DATA" "$@" </dev/null >/dev/null 2>&1 3>&-; }

# --- Redis: every acknowledged write fsynced, so a kill -9 loses none.
start_redis

# --- the nodes: each in its own directory (its ./data), with a fixed node id.
start_node() {
  local i=$1 port=${NODE_PORTS[$1]}
  mkdir -p "$WORK/node$i"
  (cd "$WORK/node$i" && FERRITE_NODE_ID=chaos-$i LOG_LEVEL=warn DOCKER_HOST=$DOCKER_HOST_PRIVATE \
    MQ_URL="redis://127.0.0.1:$REDIS_PORT/chaos" \
    exec "$BIN" server --host 127.0.0.1 --port "$port" --db-url "$DB_URL") \
    >/dev/null 2>>"$WORK/node$i.log" 3>&- &
  NODE_PIDS[$i]=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0; sleep 0.1; done
  log "node $i did not come up"; exit 1
}
for i in "${NODES[@]}"; do start_node "$i"; done
NODE1=http://127.0.0.1:${NODE_PORTS[1]}

# --- HAProxy as in docs/operating.md: /r/ by a consistent hash of the URI.
addrs=()
for i in "${NODES[@]}"; do addrs+=("127.0.0.1:${NODE_PORTS[$i]}"); done
haproxy_config "$LB_PORT" "${addrs[@]}" >"$WORK/haproxy.cfg"
haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 3>&- &
HAPROXY_PID=$!
LB=http://127.0.0.1:$LB_PORT

# --- the routes: no network (the private engine has no bridge; none needs one).
route() {
  curl -sf -o /dev/null -X POST "$NODE1/v1/apps/$APP/routes" -d "{\"route\":{\"path\":\"$1\",\"image\":\"$2\",$3
    \"confinement\":{\"network\":\"none\"}}}" || { log "creating route $1 failed"; exit 1; }
}
for n in 1 2; do
  route "/cold$n" ferrite/hello ''
  route "/hot$n" ferrite/hot-hello '"format":"http","max_concurrency":4,'
  route "/async$n" ferrite/hot-hello '"format":"http","type":"async","max_concurrency":4,'
done
for _ in $(seq 100); do curl -sf -o /dev/null -d '{"name":"x"}' "$LB/r/$APP/hot1" && break; sleep 0.1; done

# --- the faults
: >"$WORK/faults"
# outage STOP_COMMAND START_COMMAND: stops, waits 3-6 s, starts; DETAIL says
# how long each step took (a stop or a start can take longer than the wait).
outage() {
  local t0 t1 t2 t3
  t0=$(now); eval "$1"; t1=$(now)
  sleep $((3 + RANDOM % 4))
  t2=$(now); eval "$2"; t3=$(now)
  DETAIL=$(python3 -c "print(f'(stopping {$t1 - $t0:.1f} s, down {$t2 - $t1:.1f} s, starting {$t3 - $t2:.1f} s)')")
}
fault_engine() { outage 'scripts/dockerd.sh stop "$ENGINE"' 'scripts/dockerd.sh start "$ENGINE" >/dev/null'; }
fault_postgres() { outage 'pg_ctl -m fast -w stop' 'pg_ctl -l "$PG_DATA/../postgres.log" -w start'; }
fault_redis_restart() {
  kill -KILL "$REDIS_PID"
  wait "$REDIS_PID" 2>/dev/null || true
  sleep 1
  start_redis
}
fault_redis_stop() {
  kill -STOP "$REDIS_PID"
  sleep $((3 + RANDOM % 4))
  kill -CONT "$REDIS_PID"
}
fault_node_kill() {
  local i=${NODES[$((RANDOM % ${#NODES[@]}))]}
  DETAIL="node $i"
  kill -KILL "${NODE_PIDS[$i]}"
  wait "${NODE_PIDS[$i]}" 2>/dev/null || true
  sleep 2
  start_node "$i"
}
FAULTS=(engine postgres redis-restart redis-stop node-kill)

# A node that died by itself is a finding: listed, and started again.
revive_nodes() {
  local i start
  for i in "${NODES[@]}"; do
    kill -0 "${NODE_PIDS[$i]}" 2>/dev/null && continue
    start=$(now)
    wait "${NODE_PIDS[$i]}" 2>/dev/null || true
    log "node $i exited by itself; starting it again"
    start_node "$i"
    echo "node-exit $start $(now) node $i" >>"$WORK/faults"
  done
}

# The load runs for DURATION seconds, and at least 15 s after the last
# recovery (a slow one can outlast DURATION): it stops when the file exists.
python3 bench/chaosload.py run "$LB" "$WORK/stop" "$WORK/samples" &
LOAD_PID=$!
LOAD_END=$(($(date +%s) + DURATION))
# Faults are dealt from a shuffled deck of all kinds, so that a short run
# sees each kind once before any comes again.
DECK=()
deal() {
  local i j t
  if [[ ${#DECK[@]} -eq 0 ]]; then
    DECK=("${FAULTS[@]}")
    for ((i = ${#DECK[@]} - 1; i > 0; i--)); do
      j=$((RANDOM % (i + 1))); t=${DECK[$i]}; DECK[i]=${DECK[$j]}; DECK[j]=$t
    done
  fi
  kind=${DECK[0]}
  DECK=("${DECK[@]:1}")
}

while :; do
  gap=$((GAP_MIN + RANDOM % (GAP_MAX - GAP_MIN + 1)))
  deal
  [[ $(($(date +%s) + gap)) -lt $LOAD_END ]] || break
  for _ in $(seq "$gap"); do sleep 1; revive_nodes; done
  DETAIL=
  start=$(now)
  log "fault: $kind"
  "fault_${kind//-/_}"
  echo "$kind $start $(now) $DETAIL" >>"$WORK/faults"
  log "recovered from $kind in $(python3 -c "print(f'{$(now) - $start:.1f}')") s"
done
LOAD_END=$((LOAD_END > $(date +%s) + 15 ? LOAD_END : $(date +%s) + 15))
while [[ $(date +%s) -lt $LOAD_END ]]; do sleep 1; revive_nodes; done
touch "$WORK/stop"
wait "$LOAD_PID"
LOAD_PID=

log "load done; waiting up to $SETTLE s for the async calls to end"
python3 bench/chaosload.py settle "$NODE1" "$WORK/samples" "$SETTLE" >"$WORK/async.json"
stop_pid "$HAPROXY_PID"
HAPROXY_PID=
stop_nodes
LEAKED=$(engine_containers)
if [[ $LEAKED -ne 0 ]]; then
  docker -H "$DOCKER_HOST_PRIVATE" ps -a --filter label=org.ferrite.managed \
    --format '{{.Names}} {{.Status}} node={{.Label "org.ferrite.node"}} kind={{.Label "org.ferrite.kind"}}' >&2
fi

STATUS=0
TABLE=$(python3 bench/chaosload.py report "$WORK/samples" "$WORK/faults" "$WORK/async.json" "$LEAKED") || STATUS=$?
echo "$TABLE"

python3 - "$TABLE" "$(nproc)" "$(date -u +%Y-%m-%d)" "$SEED" "$DURATION" "$GAP_MIN" "$GAP_MAX" \
  "$(docker -H "$DOCKER_HOST_PRIVATE" version --format '{{.Server.Version}}')" <<'PY' |
import sys
table, cores, day, seed, duration, gap_min, gap_max, docker = sys.argv[1:]
section = (f"## Chaos run (`bench/chaos.sh`)\n\n{day}, {cores} cores, release build, seed {seed} "
           f"(`SEED={seed} DURATION={duration} bench/chaos.sh` deals the same faults); two nodes behind "
           "HAProxy sharing PostgreSQL 15 and Redis 7 (appendfsync always), functions on a private "
           f"Docker {docker} engine, all on this machine. For at least {duration} s (until 15 s after the last "
           "recovery), threads call two cold "
           "routes (`ferrite/hello`), two hot routes and two async routes (`ferrite/hot-hello`, "
           "format http) through HAProxy, each call on a new connection, while one fault at a time "
           f"is injected and repaired every {gap_min} to {gap_max} s. Both nodes run their functions "
           "on the one private engine, so an engine fault stops every node at once: their `/health` "
           "fails and the balancer answers the calls itself with 503 (and `Retry-After`) until the "
           "engine is back; with an engine per node, as in production, the other nodes take the calls.\n\n"
           f"{table}\n")
sys.stdout.write(section)
PY
  write_doc_section "Chaos run (\`bench/chaos.sh\`)"
log "written to docs/benchmarks.md"
exit "$STATUS"
