#!/usr/bin/env bash
# Ferrite on a real Swarm of three nodes, one manager and two workers, all on
# this machine (Docker-in-Docker nodes of scripts/swarm-nodes.sh), deployed
# from deploy/stack.yml as an operator deploys it, with the machine's own
# engine and Swarm left alone. Prints what it measures and checks it:
#
#   placement    a route whose service is constrained to workers (node.role==worker)
#                runs its tasks there only, and its calls are answered from both
#   overlay      calls to a route of three replicas are answered from tasks on every
#                node, forwarded by the manager's Ferrite over the overlay network
#   missing      a route whose image exists only on the manager (no registry), its
#                tasks constrained to workers: GET /v1/services names both workers
#                in missing_image_on
#   from zero    a route at zero replicas constrained to one worker: time to the
#                first answer, and that the worker's task gave it
#   worker       the same routes through a worker's Ferrite, whose engine is no
#                manager: calls to /spread answered from tasks on every node, and
#                a route made through the worker's API at zero replicas, its
#                service made by the manager, its first call through the worker
#   drain        (full run) a worker drained while callers call: its tasks move,
#                the longest time callers got no answer, and failed calls
#   kill         (full run) the other worker's container killed while callers call
#                and async calls are queued: the same figures, and that every async
#                call completes
#
# Calls go to the manager's Ferrite, whose port the run publishes on its node,
# except those of the worker check, which go to a worker's (a worker's Ferrite
# finds the tasks by DNS and its key in what the manager publishes,
# docs/services.md). The images come from this machine's engine by docker
# save | docker load: ferrite/ferrite on every node, the rest on the manager.
#
#   bench/cluster-swarm.sh           # the full run (about 3 minutes), writes its
#                                    # section of docs/benchmarks.md
#   bench/cluster-swarm.sh --short   # placement, overlay, missing, from zero (the test suite's,
#                                    # crates/ferrite/tests/swarm_cluster.rs); writes nothing
#
# Needs the images of scripts/deploy-images.sh, scripts/images.sh (probe,
# hello) and debian:bookworm-slim (scripts/base-images.sh). Removes its nodes,
# their volumes and network whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=cluster-swarm.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

SHORT=
case ${1:-} in
  --short) SHORT=1 ;;
  "") ;;
  *) echo "usage: $0 [--short]" >&2; exit 2 ;;
esac

NAME=swarm-$$
MANAGER=ferrite-dind-$NAME-1
W1=ferrite-dind-$NAME-2
W2=ferrite-dind-$NAME-3
# Each node's Ferrite, published on its node (host mode), and HAProxy.
FPORT=18080
HPORT=18081
APP=swarm
WORK=$(mktemp -d)
STOP=$WORK/stop
LOADERS=()
fail() { log "FAILED: $*"; exit 1; }

for image in ferrite/ferrite ferrite/postgres ferrite/redis ferrite/haproxy ferrite/probe ferrite/hello; do
  docker image inspect "$image" >/dev/null 2>&1 \
    || { log "image $image is missing (scripts/deploy-images.sh, scripts/images.sh)"; exit 1; }
done

cleanup() {
  local status=$?
  touch "$STOP"
  for pid in "${LOADERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $status != 0 ]]; then
    log "failed (exit $status); the manager's view:"
    docker exec "$MANAGER" docker service ls >&2 2>&1 || true
    docker exec "$MANAGER" docker service logs --tail 30 ferrite_ferrite >&2 2>&1 || true
  fi
  scripts/swarm-nodes.sh down "$NAME"
  rm -rf "$WORK"
  log "nodes, volumes and network of $NAME removed"
  exit "$status"
}
trap cleanup EXIT

# on NODE ARGS...: docker on a node's engine.
on() {
  local node=$1
  shift
  docker exec "$node" docker "$@"
}
ms() { date +%s%3N; }

began=$(ms)
scripts/swarm-nodes.sh up "$NAME" 2 >"$WORK/nodes"
declare -A ADDR
while read -r node _ addr; do ADDR[$node]=$addr; done <"$WORK/nodes"
scripts/swarm-nodes.sh load "$NAME" all ferrite/ferrite
scripts/swarm-nodes.sh load "$NAME" "$MANAGER" ferrite/postgres ferrite/redis ferrite/haproxy ferrite/probe ferrite/hello
log "3 nodes in a Swarm, images loaded, in $(($(ms) - began)) ms: $(tr '\n' ';' <"$WORK/nodes" | sed 's/;$//; s/;/; /g')"

# The stack as docs/operating.md deploys it: secrets first. The second file
# publishes each node's Ferrite on its node and keeps HAProxy on the
# manager, where its image is.
openssl rand -hex 32 >"$WORK/key"
for secret in postgres-password redis-password; do
  openssl rand -hex 32 | docker exec -i "$MANAGER" docker secret create "ferrite-$secret" - >/dev/null
done
docker exec -i "$MANAGER" docker secret create ferrite-jwt-key - <"$WORK/key" >/dev/null
cat >"$WORK/published.yml" <<YML
version: "3.8"
services:
  ferrite:
    ports:
      - {target: 8080, published: $FPORT, mode: host}
  haproxy:
    ports:
      - {target: 80, published: $HPORT, mode: host}
    deploy:
      placement:
        constraints: [node.role == manager]
YML
docker cp deploy/stack.yml "$MANAGER:/stack.yml"
docker cp "$WORK/published.yml" "$MANAGER:/published.yml"
began=$(ms)
docker exec "$MANAGER" docker stack deploy -c /stack.yml -c /published.yml ferrite >/dev/null
for node in "$MANAGER" "$W1" "$W2"; do
  up=
  for _ in $(seq 240); do
    curl -sf "http://${ADDR[$node]}:$FPORT/version" >/dev/null 2>&1 && { up=1; break; }
    sleep 0.5
  done
  [[ -n $up ]] || fail "the Ferrite of $node does not answer"
done
for _ in $(seq 120); do curl -sf "http://${ADDR[$MANAGER]}:$HPORT/version" >/dev/null 2>&1 && break; sleep 0.5; done
log "stack deployed: Ferrite answers on all 3 nodes, HAProxy $(curl -s "http://${ADDR[$MANAGER]}:$HPORT/version"), in $(($(ms) - began)) ms"

URL=http://${ADDR[$MANAGER]}:$FPORT
token() {
  python3 - "$WORK/key" <<'PY'
import base64, hashlib, hmac, json, sys, time
key = open(sys.argv[1], "rb").read().rstrip(b"\n")
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"exp": now + 1800, "iat": now, "sub": "cluster-swarm"}).encode())
sig = b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
AUTH="Authorization: Bearer $(token)"
api() {
  local method=$1 path=$2
  shift 2
  curl -sS -f -X "$method" -H "$AUTH" -H 'Content-Type: application/json' "$URL$path" "$@"
}
# route PATH IMAGE TYPE SERVICE-JSON
route() {
  api POST "/v1/apps/$APP/routes" -d "{\"route\":{\"path\":\"$1\",\"image\":\"$2\",\"type\":\"$3\",\"service\":$4}}" >/dev/null \
    || fail "creating route $1"
}
# service_field PATH FIELD: one field of the route's entry in GET /v1/services.
service_field() {
  api GET /v1/services | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["path"] == sys.argv[1]:
        v = s.get(sys.argv[2])
        print(",".join(sorted(v)) if isinstance(v, list) else v)
' "$1" "$2"
}
# wait_running PATH N: until N tasks of the route's service run.
wait_running() {
  for _ in $(seq 240); do
    [[ $(service_field "$1" running) == "$2" ]] && return 0
    sleep 0.5
  done
  fail "route $1: $(service_field "$1" running) tasks running, not $2"
}
# task_map: "container-id node" of every task container on the live nodes.
task_map() {
  local node
  for node in "$MANAGER" "$W1" "$W2"; do
    docker exec "$node" docker ps -a --filter label=com.docker.swarm.service.name \
      --format "{{.ID}} $node" 2>/dev/null || true
  done >>"$WORK/tasks"
}
# calls PATH N [URL]: N calls (4 callers) to a route that answers the task's
# hostname, through the Ferrite at URL (the manager's by default); prints the
# report.
calls() {
  local out=$WORK/calls-${1#/}
  rm -f "$STOP" "$out"
  python3 bench/swarmload.py run "${3:-$URL}/r/$APP$1" 'cat /etc/hostname' 4 "$STOP" "$out" &
  local pid=$!
  for _ in $(seq 600); do
    [[ -f $out && $(wc -l <"$out") -ge $2 ]] && break
    sleep 0.1
  done
  touch "$STOP"
  wait "$pid"
  task_map
  python3 bench/swarmload.py report "$out" "$WORK/tasks"
}
# nodes_of REPORT: the nodes that answered, comma-separated.
nodes_of() { python3 -c 'import json,sys; print(",".join(json.loads(sys.argv[1])["per_node"]))' "$1"; }

api POST /v1/apps -d "{\"app\":{\"name\":\"$APP\"}}" >/dev/null || fail "creating app $APP"

# missing: the route's image is derived on the manager only; its tasks may
# run on workers only. Created first: the node looks every 30 s.
route /missing ferrite/hello sync '{"min_replicas":2,"max_replicas":2,"constraints":["node.role==worker"]}'
missing_since=$(ms)

# A service image made once on the manager and loaded on the workers, as
# an operator without a registry does: the other routes run it everywhere.
on "$MANAGER" run --rm -v /var/run/docker.sock:/var/run/docker.sock ferrite/ferrite \
  services image ferrite/probe -t ferrite/probe-service:bench >/dev/null
for node in "$W1" "$W2"; do
  docker exec "$MANAGER" docker save ferrite/probe-service:bench | docker exec -i "$node" docker load -q >/dev/null
done

# placement
route /pinned ferrite/probe-service:bench sync '{"min_replicas":2,"max_replicas":2,"constraints":["node.role==worker"]}'
wait_running /pinned 2
placed=$(on "$MANAGER" service ps --filter desired-state=running --format '{{.Node}}' "$(service_field /pinned service)" | sort | tr '\n' ',' | sed 's/,$//')
[[ $placed == "$W1,$W2" ]] || fail "the tasks of /pinned run on $placed"
report=$(calls /pinned 40)
log "placement: /pinned (node.role==worker) runs on $placed; calls: $report"
[[ $(nodes_of "$report") == "$W1,$W2" ]] || fail "/pinned was answered from $(nodes_of "$report")"
log "placement honoured: answers from $W1,$W2 only"

# overlay
route /spread ferrite/probe-service:bench sync '{"min_replicas":3,"max_replicas":3}'
wait_running /spread 3
overlay=$(calls /spread 90)
log "overlay: /spread (3 replicas) calls: $overlay"
[[ $(nodes_of "$overlay") == "$MANAGER,$W1,$W2" ]] || fail "/spread was answered from $(nodes_of "$overlay")"
log "answered from tasks on every node: $MANAGER,$W1,$W2"

# from zero, on a worker
route /cold ferrite/probe-service:bench sync "{\"min_replicas\":0,\"max_replicas\":1,\"constraints\":[\"node.hostname==$W2\"]}"
start=$(ms)
answer=$(curl -sS -f -d 'cat /etc/hostname' "$URL/r/$APP/cold") || fail "the first call to /cold"
first=$(($(ms) - start))
task_map
where=$(awk -v id="$answer" 'substr($1, 1, 12) == id { print $2; exit }' "$WORK/tasks")
[[ $where == "$W2" ]] || fail "the first call to /cold was answered on ${where:-an unknown node} ($answer)"
log "scale from zero on $W2: first answer in $first ms, from its task"

# worker: through a worker's Ferrite, whose engine is no manager
WURL=http://${ADDR[$W1]}:$FPORT
via_worker=$(calls /spread 90 "$WURL")
log "worker: /spread through $W1's Ferrite: $via_worker"
[[ $(nodes_of "$via_worker") == "$MANAGER,$W1,$W2" ]] || fail "/spread through $W1 was answered from $(nodes_of "$via_worker")"
log "through a worker's Ferrite: answered from tasks on every node: $MANAGER,$W1,$W2"
listed=$(curl -sS -f -H "$AUTH" "$WURL/v1/services" | python3 -c 'import json, sys; l = json.load(sys.stdin); print(len(l["services"]), l.get("reason", ""))') \
  || fail "GET /v1/services through $W1"
log "worker: GET /v1/services through $W1's Ferrite: $listed"
[[ $listed == "0 this node's engine is a Swarm worker: it calls the tasks"* ]] || fail "GET /v1/services through $W1 says: $listed"
# A route made through the worker's API, at zero: the manager makes its
# service; the first call through the worker scales it up.
curl -sS -f -H "$AUTH" -H 'Content-Type: application/json' "$WURL/v1/apps/$APP/routes" \
  -d "{\"route\":{\"path\":\"/made-on-worker\",\"image\":\"ferrite/probe-service:bench\",\"type\":\"sync\",\"service\":{\"min_replicas\":0,\"max_replicas\":1}}}" >/dev/null \
  || fail "creating /made-on-worker through $W1"
for _ in $(seq 120); do
  [[ -n $(service_field /made-on-worker service) ]] && break
  sleep 0.5
done
[[ -n $(service_field /made-on-worker service) ]] || fail "the manager made no service for /made-on-worker"
start=$(ms)
answer=$(curl -sS -f -d 'cat /etc/hostname' "$WURL/r/$APP/made-on-worker") || fail "the first call to /made-on-worker through $W1"
first_worker=$(($(ms) - start))
[[ -n $answer ]] || fail "an empty answer from /made-on-worker"
log "route made through a worker's Ferrite, scaled from zero by its first call there: first answer in $first_worker ms"

# missing, checked now that the node has had time to look
missing=
for _ in $(seq 90); do
  missing=$(service_field /missing missing_image_on)
  [[ $missing == "$W1,$W2" ]] && break
  sleep 1
done
missing_s=$((($(ms) - missing_since) / 1000))
log "missing_image_on of /missing after $missing_s s: ${missing:-none}"
[[ $missing == "$W1,$W2" ]] || fail "missing_image_on is '${missing}', not $W1,$W2"

if [[ -n $SHORT ]]; then
  log "short run done"
  exit 0
fi

# load_start PATH NAME: 4 callers on the route until load_stop; their calls
# go to $WORK/calls-NAME.
load_start() {
  rm -f "$STOP"
  python3 bench/swarmload.py run "$URL/r/$APP$1" 'cat /etc/hostname' 4 "$STOP" "$WORK/calls-$2" &
  LOADERS+=($!)
}
load_stop() {
  touch "$STOP"
  for pid in "${LOADERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  LOADERS=()
}
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(v[sys.argv[2]])' "$1" "$2"; }
# nodes_running PATH: the nodes of the service's running tasks, sorted.
nodes_running() {
  on "$MANAGER" service ps --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' \
    "$(service_field "$1" service)" | awk '$2 == "Running" { print $1 }' | sort | tr '\n' ',' | sed 's/,$//'
}
# moved PATH GONE: until no task of the route runs on node GONE and its
# three replicas run elsewhere, as Swarm and Ferrite both see it; prints
# the milliseconds it took.
moved() {
  local from
  from=$(ms)
  for _ in $(seq 240); do
    local nodes
    nodes=$(nodes_running "$1")
    if [[ $nodes != *"$2"* && $(tr ',' '\n' <<<"$nodes" | grep -c .) == 3 && $(service_field "$1" running) == 3 ]]; then
      echo $(($(ms) - from))
      return 0
    fi
    sleep 0.25
  done
  fail "the tasks of $1 did not leave $2: $(nodes_running "$1")"
}

# drain: a worker drained under calls
task_map
log "drain: /spread runs on $(nodes_running /spread); callers start"
load_start /spread drain
sleep 3
task_map
drained_at=$(ms)
on "$MANAGER" node update --availability drain "$W1" >/dev/null
took=$(moved /spread "$W1")
task_map
sleep 3
load_stop
drain=$(python3 bench/swarmload.py report "$WORK/calls-drain" "$WORK/tasks" "$drained_at")
log "drain: $W1 drained, its tasks moved in $took ms (now on $(nodes_running /spread)); calls since: $drain"
DRAIN_MOVED=$took
on "$MANAGER" node update --availability active "$W1" >/dev/null

# kill: the other worker's container killed under calls, async calls queued
route /queued ferrite/probe-service:bench async '{"min_replicas":3,"max_replicas":3}'
# Calls that run 10 s, on a task on each worker: those on the killed one's
# task are lost with its node (no answer, no reset).
route /slow ferrite/probe-service:bench sync '{"min_replicas":2,"max_replicas":2,"constraints":["node.role==worker"]}'
# A dead node's connections may also end closed, which a function can do
# too: that counts against max_retries (docs/services.md).
api POST "/v1/apps/$APP/routes" -d '{"route":{"path":"/slow-queued","image":"ferrite/probe-service:bench","type":"async","max_retries":2,"service":{"min_replicas":2,"max_replicas":2,"constraints":["node.role==worker"]}}}' >/dev/null \
  || fail "creating route /slow-queued"
wait_running /queued 3
wait_running /slow 2
wait_running /slow-queued 2
task_map
log "kill: /spread runs on $(nodes_running /spread), /queued on $(nodes_running /queued), /slow on $(nodes_running /slow); callers start"
load_start /spread kill
SLOW='sleep 10; cat /etc/hostname'
SLOW_PIDS=()
: >"$WORK/slow"
for _ in 1 2 3 4; do
  (code=$(curl -sS -o /dev/null -w '%{http_code}' -d "$SLOW" "$URL/r/$APP/slow" || true)
   echo "$code $(ms)" >>"$WORK/slow") &
  SLOW_PIDS+=($!)
done
: >"$WORK/slow-async"
for _ in 1 2 3 4; do
  curl -sS -X POST -d "$SLOW" "$URL/r/$APP/slow-queued" >>"$WORK/slow-async" || true
  echo >>"$WORK/slow-async"
done
sleep 3
ASYNC=60
: >"$WORK/async"
for i in $(seq "$ASYNC"); do
  curl -sS -X POST -d 'cat /etc/hostname' "$URL/r/$APP/queued" >>"$WORK/async" || true
  echo >>"$WORK/async"
  if [[ $i == $((ASYNC / 3)) ]]; then
    killed_at=$(ms)
    docker kill "$W2" >/dev/null
  fi
done
queued=$(grep -c call_id "$WORK/async" || true)
took=$(moved /spread "$W2")
task_map
sleep 3
load_stop
kill=$(python3 bench/swarmload.py report "$WORK/calls-kill" "$WORK/tasks" "$killed_at")
log "kill: $W2 killed, /spread's tasks moved in $took ms (now on $(nodes_running /spread)); calls since: $kill"
KILL_MOVED=$took
mapfile -t ids < <(grep -o '"call_id":"[^"]*"' "$WORK/async" | cut -d'"' -f4)
for _ in $(seq 240); do
  states=$(for id in "${ids[@]}"; do
    api GET "/v1/apps/$APP/calls/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["call"]["status"])' || echo unknown
  done | sort | uniq -c | awk '{ printf "%s %s,", $2, $1 }' | sed 's/,$//')
  [[ $states == "success $queued" ]] && break
  sleep 1
done
completed=$(grep -o 'success [0-9]*' <<<"$states" | cut -d' ' -f2)
log "async: $queued of $ASYNC queued (answered 202), ${completed:-0} completed (${states})"
[[ ${completed:-0} == "$queued" ]] || fail "async calls: $queued queued, ${completed:-0} completed"
# Run more than once: a call the killed node's Ferrite was running when it
# died runs again elsewhere once its lease is over (at-least-once).
# And how long each waited from its acceptance to its end (a worker's
# Ferrite that takes one gives it back to the queue with the retry backoff,
# 1 s at the first delivery), and when the last one ended.
for id in "${ids[@]}"; do api GET "/v1/apps/$APP/calls/$id"; echo; done >"$WORK/async-calls"
read -r reruns wait_median wait_max last_done < <(python3 -c 'import json, statistics, sys
from datetime import datetime
t = lambda v: datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
calls = [json.loads(l)["call"] for l in open(sys.argv[1]) if l.strip()]
waits = [t(c["completed_at"]) - t(c["created_at"]) for c in calls]
last = max(t(c["completed_at"]) for c in calls) - int(sys.argv[2]) / 1000
print(sum(c["attempts"] > 1 for c in calls), f"{statistics.median(waits):.1f}", f"{max(waits):.1f}", f"{last:.1f}")' "$WORK/async-calls" "$killed_at")
log "async: $reruns of them ran more than once; accepted to done: median $wait_median s, longest $wait_max s; the last done $last_done s after the kill"

# lost: the 10 s calls running when the worker died
for pid in "${SLOW_PIDS[@]}"; do wait "$pid" || true; done
read -r lost_count lost_after < <(awk -v k="$killed_at" '$1 != 200 { n++; t = ($2 - k) / 1000; if (t > m) m = t } END { printf "%d %.1f\n", n, m }' "$WORK/slow")
slow_codes=$(awk '{ print $1 }' "$WORK/slow" | sort | uniq -c | awk '{ printf "%s %s,", $2, $1 }' | sed 's/,$//')
log "lost: the 10 s sync calls when the worker was killed: $slow_codes; the last failed one answered $lost_after s after the kill"
[[ $slow_codes == *200* ]] || fail "no 10 s call ran on the live worker: $slow_codes"
awk '$1 != 200 && $1 != 502 { bad = 1 } END { exit bad }' "$WORK/slow" || fail "a 10 s call ended neither 200 nor 502: $slow_codes"
mapfile -t slow_ids < <(grep -o '"call_id":"[^"]*"' "$WORK/slow-async" | cut -d'"' -f4)
for _ in $(seq 120); do
  slow_states=$(for id in "${slow_ids[@]}"; do
    api GET "/v1/apps/$APP/calls/$id" | python3 -c 'import json,sys; c=json.load(sys.stdin)["call"]; print(c["status"], c["attempts"])' || echo unknown 0
  done)
  [[ $(grep -c '^success' <<<"$slow_states") == "${#slow_ids[@]}" ]] && break
  sleep 1
done
slow_done=$(grep -c '^success' <<<"$slow_states" || true)
slow_again=$(awk '$1 == "success" && $2 > 1' <<<"$slow_states" | wc -l)
log "lost: the 10 s async calls: ${slow_done} of ${#slow_ids[@]} completed, $slow_again of them after running again"
[[ $slow_done == "${#slow_ids[@]}" ]] || fail "10 s async calls: $slow_done of ${#slow_ids[@]} completed ($slow_states)"

# The figures, into docs/benchmarks.md.
engine=$(docker version --format '{{.Server.Version}}')
# per_node REPORT: "manager N, worker 2 N, ..." (a node's number is its
# name's last part).
per_node() {
  python3 -c 'import json, sys
counts = json.loads(sys.argv[1])["per_node"]
name = lambda n: "manager" if n.endswith("-1") else "worker " + n.rsplit("-", 1)[1]
print(", ".join(f"{name(n)} {c}" for n, c in counts.items()))' "$1"
}
# failed REPORT: "F of N" with the statuses of the failed calls.
failed() {
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
kinds = ", ".join((k if k != "0" else "no answer") + ": " + str(v) for k, v in r["errors"].items())
print(str(r["failed"]) + " of " + str(r["calls"]) + (" (" + kinds + ")" if kinds else ""))' "$1"
}
write_doc_section 'A Swarm of three nodes (`bench/cluster-swarm.sh`)' <<DOC
## A Swarm of three nodes (\`bench/cluster-swarm.sh\`)

$(date -u +%F), $(nproc) cores, $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo), Docker $engine on the machine and in each node: one manager and two workers, each a Docker-in-Docker container of \`scripts/swarm-nodes.sh\` on this one machine, Ferrite deployed on them from \`deploy/stack.yml\` (a node on each, PostgreSQL and Redis on the manager), the images loaded with \`docker save | docker load\` (no registry). Calls go to the manager's Ferrite, 4 callers each calling \`ferrite/probe\`'s service image (a fresh process per call in the task), which answers its task's hostname.

| what | figure |
| --- | --- |
| placement: tasks of \`node.role==worker\` (2 replicas) | on the two workers only; calls answered by both |
| overlay: answers of calls to 3 replicas, per node | $(per_node "$overlay") |
| \`missing_image_on\` of a route whose image is on the manager only | both workers, ${missing_s:-?} s after the route was made |
| scale from zero on a worker (constrained there), first answer | $first ms |
| through a worker's Ferrite: answers of calls to 3 replicas, per node | $(per_node "$via_worker") |
| a route made through a worker's Ferrite at zero replicas, first answer of its first call there | $first_worker ms |
| drain a worker: its tasks running elsewhere after | $DRAIN_MOVED ms |
| drain: longest time without an answer, slowest call, failed calls | $(field "$drain" longest_gap_ms) ms, $(field "$drain" slowest_ms) ms, $(failed "$drain") |
| kill a worker's container: its tasks running elsewhere after | $KILL_MOVED ms |
| kill: longest time without an answer, slowest call, failed calls | $(field "$kill" longest_gap_ms) ms, $(field "$kill" slowest_ms) ms, $(failed "$kill") |
| async calls queued around the kill (a third before it), completed | $queued queued, ${completed:-0} completed, $reruns run twice, the last $last_done s after the kill |
| async: from accepted to done, median and longest | $wait_median s, $wait_max s |
| 10 s sync calls running when the worker was killed (4, on a task of each worker) | $slow_codes; the failed ones answered $lost_after s after the kill (the route's timeout is 30 s) |
| 10 s async calls queued just before the kill (4, \`max_retries\` 2) | $slow_done completed, $slow_again of them after running again on a live task |

A drained worker's tasks are stopped and started elsewhere one by one; the forwarding node sees
each stopped task leave the service's running tasks and sends calls to the others meanwhile. A
killed worker's tasks stay "running" for Swarm until the manager misses the node's heartbeats
and marks it down, which is most of the time its tasks take to move; meanwhile a connection to
one of them cannot be made (1 s connect timeout), the call is tried on another task and the dead
one is avoided for 2 s: a caller sees one slow call (the slowest above), while the others are
answered by the other tasks. The calls that fail are those a killed task was running (502):
either at once, when the manager's kernel reports the dead peer unreachable and the connection
ends, or within about 5 s, when the connection's TCP keep-alive probes and the limit on
unacknowledged bytes (\`TCP_USER_TIMEOUT\`, 5 s) find nobody there. Before those two settings,
such a call waited for the route's timeout: in two runs of the same day, 3 and 2 calls of
/spread answered 504 after 30 s, and an async call that had been running on a dead task ended
as a timeout. A call lost with its node that way runs again if async, whatever its route's
\`max_retries\`; one whose connection ended closed counts against them (a function can close
its connection too), hence \`max_retries\` 2 on the 10 s async route.
Async calls go on: every node's Ferrite takes them from the queue and runs them on the
service's tasks (a worker's finds them by DNS); a call the killed node's Ferrite was running is
taken again when its lease runs out (30 s), which is the longest wait above when it happens. Every node is a container on the
same 2 cores, so these times are Swarm's own (its heartbeats, its task restarts), not a network's.
DOC
log "figures written to docs/benchmarks.md"
