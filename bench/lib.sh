# shellcheck shell=bash
# Functions shared by the benchmarks; sourced, not run, from the repository
# root with BENCH set to the script's name. Brings scripts/lib.sh with it.

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

BEGAN=$(date +%s)

# A server started on a machine whose Swarm is active makes the overlay
# network of its services' tasks: each bench names its own, removed when its
# servers stop (stop_server, stop_nodes), never the machine's default.
export FERRITE_SERVICE_NETWORK=${FERRITE_SERVICE_NETWORK:-ferrite-bench-$$}
remove_service_network() { docker network rm "$FERRITE_SERVICE_NETWORK" >/dev/null 2>&1 || true; }

# log MESSAGE...: to stderr, with the seconds since the bench began.
log() { echo "$BENCH [$(($(date +%s) - BEGAN)) s]: $*" >&2; }

# release_ferrite: the release ferrite, as an absolute path in BIN. Built as
# scripts/deploy-images.sh builds the binary of ferrite/ferrite (glibc linked
# statically, in its own target directory), so that one release build serves
# every bench and the image bench/services.sh makes: two would take minutes.
release_ferrite() {
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --locked --profile release -q -p ferrite --target x86_64-unknown-linux-gnu
  BIN=$(realpath "${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/ferrite")
}

# build IMAGE...: the release ferrite (BIN), bench/hotclient (CLIENT) and
# the function images named.
build() {
  release_ferrite
  cargo build --release --locked -q --manifest-path bench/hotclient/Cargo.toml
  scripts/images.sh "$@" >&2
  CLIENT=bench/hotclient/target/release/hotclient
}

# node_containers: how many containers node $NODE has, in any state.
node_containers() { docker ps -aq --filter "label=org.ferrite.node=$NODE" | wc -l; }

# require_no_node_containers: a run starts with none, so that what is left
# at its end is its own.
require_no_node_containers() {
  [[ $(node_containers) -eq 0 ]] || { log "containers of node $NODE exist before the run; remove them first"; exit 1; }
}

# sweep_node_containers: removes what node $NODE left after shutdown, saying
# so; fails when there was any (the run then fails too).
sweep_node_containers() {
  local left
  left=$(node_containers)
  [[ $left -eq 0 ]] && return 0
  log "$left container(s) of node $NODE left after shutdown; removing them"
  docker ps -aq --filter "label=org.ferrite.node=$NODE" | xargs -r docker rm -f >/dev/null
  return 1
}

# stop_server: SIGTERM the server $PID and wait for it: it removes its
# containers on the way out.
stop_server() {
  [[ -n $PID ]] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=
  remove_service_network
}

# stop_pid PID: stops a helper process (Redis, HAProxy, a sampler) when PID
# is set.
stop_pid() {
  [[ -n $1 ]] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# stop_nodes: SIGTERM every node of NODE_PIDS, then wait for them all.
stop_nodes() {
  local pid
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  NODE_PIDS=()
  remove_service_network
}

# gap_row PATH FIGURE BASELINE RATIO TARGET: one row of the table that
# bench/run.sh prints at its end (the paths where Ferrite wraps something
# and how close it comes to it), appended to $BENCH_GAPS when run.sh set it.
# FIGURE and BASELINE carry their units; RATIO is what TARGET is about.
gap_row() {
  [[ -n ${BENCH_GAPS:-} ]] || return 0
  printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$BENCH_GAPS"
}

# write_doc_section HEADING < SECTION: puts SECTION (markdown opening with
# "## HEADING") into docs/benchmarks.md in place of that heading's section,
# one blank line above it, keeping the others; at its end when it is new.
write_doc_section() {
  local doc=docs/benchmarks.md
  # shellcheck disable=SC2016 # the backquotes are markdown
  [[ -f $doc ]] || printf '# Benchmarks\n\nFigures recorded by the scripts in `bench/`; each section says the command, the machine and the date.\n' >"$doc"
  python3 -c '
import re, sys
doc, heading = sys.argv[1], "## " + sys.argv[2]
section = sys.stdin.read()
text = open(doc).read()
pattern = re.compile(re.escape(heading) + r"\n.*?(?=\n## |\Z)", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section.rstrip("\n") + "\n", text)
    text = re.sub(r"\n*" + re.escape(heading), lambda _: "\n\n" + heading, text, count=1)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(doc, "w").write(text.rstrip("\n") + "\n")
' "$doc" "$1"
}

# start_redis: a Redis on REDIS_PORT with its data in $WORK/redis, every
# acknowledged write fsynced (appendfsync always), so that a kill -9 loses
# none; sets REDIS_PID. Run again, it restarts Redis on the same data.
start_redis() {
  mkdir -p "$WORK/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always \
    --dir "$WORK/redis" >>"$WORK/redis.log" 2>&1 3>&- &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  log "Redis did not start"
  exit 1
}
