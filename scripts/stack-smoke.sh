#!/usr/bin/env bash
# Deploy deploy/stack.yml on this machine's Swarm for real, as
# docs/operating.md tells an operator to (secrets first), and check what the
# stack promises through its HAProxy: the seed walk-through and an async call
# with a token, /v1 refused without one, functions cut off from PostgreSQL and
# Redis, Prometheus scraping every node through tasks.ferrite with a token,
# Redis and PostgreSQL refusing clients without their password. Then
# remove everything it made (stack, networks, volumes, secrets, configs). A Swarm that
# is already active is used as it is (and left so); an inactive one is
# initialised as a single node and left again at the end.
#
#   scripts/stack-smoke.sh      # needs the images of scripts/deploy-images.sh and scripts/images.sh hello busybox
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

STACK=ferrite-smoke-$$
PORT=$(free_port)
# The stack's secrets are named $SECRETS-postgres-password, ...
SECRETS=$STACK
FUNCTIONS=$STACK-functions
# Prometheus scraping the nodes (docs/operating.md, "Scraping every node"):
# its service, config and token secret.
METRICS=$STACK-prometheus
# The management key, kept by the operator to sign tokens with.
KEYFILE=$(mktemp)
LEFT_SWARM=
PROBES=()
BEGAN=$(date +%s)
log() { echo "stack-smoke.sh [$(($(date +%s) - BEGAN)) s]: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

for image in ferrite/ferrite ferrite/postgres ferrite/redis ferrite/haproxy ferrite/hello ferrite/busybox; do
  docker image inspect "$image" >/dev/null 2>&1 || { log "image $image is missing (scripts/deploy-images.sh, scripts/images.sh)"; exit 1; }
done

cleanup() {
  local status=$?
  if [[ $status != 0 ]]; then
    # What the nodes said, to tell a wrong answer from a slow start.
    log "failed (exit $status); the last lines of the Ferrite service:"
    docker service logs --tail 40 "${STACK}_ferrite" >&2 2>&1 || true
  fi
  log "removing stack $STACK"
  for probe in "${PROBES[@]}"; do docker rm -f "$probe" >/dev/null 2>&1 || true; done
  docker service rm "$METRICS" >/dev/null 2>&1 || true
  docker stack rm "$STACK" >/dev/null 2>&1 || true
  # Ferrite nodes remove their function containers on SIGTERM; wait for the
  # tasks, then the networks, the volumes and the secrets can go.
  for _ in $(seq 120); do
    [[ -z $(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK") \
      && -z $(docker ps -aq --filter "label=com.docker.swarm.service.name=$METRICS") ]] && break
    sleep 1
  done
  for _ in $(seq 30); do
    docker network rm "$FUNCTIONS" "${STACK}_backend" "${STACK}_front" >/dev/null 2>&1 || true
    docker volume rm "${STACK}_postgres-data" "${STACK}_redis-data" >/dev/null 2>&1 && break
    sleep 1
  done
  for _ in $(seq 30); do
    docker config rm "$METRICS" >/dev/null 2>&1 || true
    docker secret rm "$SECRETS-postgres-password" "$SECRETS-redis-password" "$SECRETS-jwt-key" \
      "$METRICS-token" >/dev/null 2>&1 && break
    [[ -z $(docker secret ls -q --filter "name=$SECRETS-") ]] && break
    sleep 1
  done
  rm -f "$KEYFILE"
  if [[ -n $LEFT_SWARM ]]; then swarm_leave; fi
  exit "$status"
}
trap cleanup EXIT

if [[ $(swarm_ensure) == initialised ]]; then
  log "initialised a single-node Swarm (left again at the end)"
  LEFT_SWARM=1
fi

# The secrets, as docs/operating.md makes them (there named ferrite-...).
openssl rand -hex 32 | docker secret create --label org.ferrite.test=1 "$SECRETS-postgres-password" - >/dev/null
openssl rand -hex 32 | docker secret create --label org.ferrite.test=1 "$SECRETS-redis-password" - >/dev/null
openssl rand -hex 32 > "$KEYFILE" && docker secret create --label org.ferrite.test=1 "$SECRETS-jwt-key" "$KEYFILE" >/dev/null
log "secrets $SECRETS-postgres-password, $SECRETS-redis-password, $SECRETS-jwt-key created"

# A management token: HS256 over {exp, iat, sub}, signed with the key (the
# file's content less its trailing newline), valid for ten minutes.
token() {
  python3 - "$KEYFILE" <<'PY'
import base64, hashlib, hmac, json, sys, time
key = open(sys.argv[1], "rb").read()
key = key[:-1] if key.endswith(b"\n") else key
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"exp": now + 600, "iat": now, "sub": "stack-smoke"}).encode())
sig = b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
AUTH="Authorization: Bearer $(token)"

log "deploying deploy/stack.yml as $STACK, published on port $PORT"
FERRITE_SECRETS=$SECRETS FERRITE_PORT=$PORT FERRITE_FUNCTIONS_NETWORK=$FUNCTIONS \
  docker stack deploy -c deploy/stack.yml "$STACK" >/dev/null

URL=http://127.0.0.1:$PORT
up=
for _ in $(seq 90); do
  curl -sf "$URL/version" >/dev/null 2>&1 && { up=1; break; }
  sleep 1
done
if [[ -z $up ]]; then
  log "no answer through HAProxy"
  docker stack ps "$STACK" --no-trunc >&2
  for service in ferrite haproxy postgres redis; do docker service logs --tail 20 "${STACK}_$service" >&2 2>&1 || true; done
  exit 1
fi
log "HAProxy answers: $(curl -sf "$URL/version")"
# HAProxy checks each backend's nodes on its own: the function calls' backend
# may still count no node up when /version (the API's backend) answers, and
# then says 503 (try again shortly). Wait until a node answers /r/ itself
# (404: no such app).
up=
for _ in $(seq 60); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$URL/r/no-such-app/hello") == 404 ]] && { up=1; break; }
  sleep 1
done
[[ -n $up ]] || fail "the function calls' backend never reached a node"

# /v1 through HAProxy is not loopback: without a token, 401.
status=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/apps")
[[ $status == 401 ]] || fail "/v1/apps without a token answered $status"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer not.a.token" "$URL/v1/apps")
[[ $status == 401 ]] || fail "/v1/apps with a bad token answered $status"
log "/v1 without a token: 401"

# The walk-through as docs/operating.md gives it: the CLI (here the one in
# ferrite/ferrite, on the host's network) signs its tokens with the key.
ferrite() {
  docker run --rm --label org.ferrite.test=1 --network host -e API_URL -e JWT_AUTH_KEY ferrite/ferrite "$@"
}
export API_URL=$URL JWT_AUTH_KEY="$(cat "$KEYFILE")"
ferrite apps create myapp >/dev/null
ferrite routes create myapp /hello ferrite/hello >/dev/null
answer=$(curl -sS -d '{"name":"Johnny"}' "$URL/r/myapp/hello") || fail "walk-through call: curl failed"
[[ $answer == "Hello Johnny!" ]] || fail "walk-through answered: $answer"
log "walk-through through HAProxy: $answer"
ferrite routes create myapp /later ferrite/hello --type async >/dev/null
accepted=$(curl -sS -X POST "$URL/r/myapp/later" -d '{"name":"Later"}') || fail "async call: curl failed"
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["call_id"])' "$accepted") || fail "async call answered: $accepted"
status=
for _ in $(seq 60); do
  status=$(curl -sf -H "$AUTH" "$URL/v1/apps/myapp/calls/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["call"]["status"])')
  [[ $status == success ]] && break
  sleep 1
done
[[ $status == success ]] || fail "async call $id is $status"
log "async call $id: $status, output $(curl -sf -H "$AUTH" "$URL/v1/apps/myapp/calls/$id/output")"

# A container on the functions network, as a function service's task is:
# it resolves and reaches Ferrite (the network works) but resolves neither
# PostgreSQL nor Redis. Nor can it reach them by address: no network of the
# container holds Redis's backend address, so the only route to it is the
# default one through the host, and the host routes it out of the machine
# (the overlay is not on the host): route lookups, no packet sent there.
task_container() {
  docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_$1" | head -1
}
redis=$(task_container redis)
postgres=$(task_container postgres)
[[ -n $redis && -n $postgres ]] || fail "no running Redis or PostgreSQL task"
redis_ip=$(docker inspect -f '{{range $name, $net := .NetworkSettings.Networks}}{{$net.IPAddress}}{{end}}' "$redis")
probe=$STACK-probe
PROBES+=("$probe")
seen=$(docker run --name "$probe" --label org.ferrite.test=1 --network "$FUNCTIONS" ferrite/busybox sh -c "
  for name in tasks.ferrite redis tasks.redis postgres tasks.postgres; do
    if nslookup \$name >/dev/null 2>&1; then echo \"resolves \$name\"; else echo \"cannot resolve \$name\"; fi
  done
  # nc ends with its input: keep it open until Ferrite has answered.
  if (printf 'GET /health HTTP/1.0\r\n\r\n'; sleep 3) | nc tasks.ferrite 8080 2>/dev/null | grep -q '^HTTP'; then
    echo 'reaches ferrite'; else echo 'cannot reach ferrite'; fi
  echo \"route to redis: \$(ip route get $redis_ip | head -1)\"" 2>&1)
for expected in "resolves tasks.ferrite" "cannot resolve redis" "cannot resolve tasks.redis" \
  "cannot resolve postgres" "cannot resolve tasks.postgres" "reaches ferrite"; do
  grep -qx "$expected" <<<"$seen" || fail "a container on the functions network: expected '$expected', saw: $seen"
done
route=$(grep '^route to redis: ' <<<"$seen")
[[ $route == *" via "* ]] || fail "a container on the functions network has a direct route to Redis: $route"
host_route=$(ip route get "$redis_ip" | head -1)
if [[ $host_route =~ dev\ (docker0|docker_gwbridge|br-|veth|vx-) ]]; then
  fail "the host routes Redis's address into a Docker network: $host_route"
fi
log "functions network: $(grep -v '^route to' <<<"$seen" | tr '\n' ',' | sed 's/,$//; s/,/, /g'), cannot reach redis"
log "functions network: $route; on the host: $host_route"

# Prometheus as docs/operating.md runs it, on the front network with
# deploy/prometheus/prometheus.yml (scraping every second rather than 15)
# and its token as a secret; the image is the deployment base with
# Debian's binary mounted, since nothing can be pulled here. Every Ferrite
# task must be a target found through tasks.ferrite, scraped with the token.
deploy/prometheus/token.py "$KEYFILE" \
  | docker secret create --label org.ferrite.test=1 "$METRICS-token" - >/dev/null
sed 's/^  scrape_interval: 15s$/  scrape_interval: 1s/; s/^  scrape_timeout: 10s$/  scrape_timeout: 1s/' \
  deploy/prometheus/prometheus.yml \
  | docker config create --label org.ferrite.test=1 "$METRICS" - >/dev/null
docker service create --detach --quiet --no-resolve-image --name "$METRICS" --label org.ferrite.test=1 \
  --container-label org.ferrite.test=1 --network "${STACK}_front" \
  --secret source="$METRICS-token",target=metrics-token \
  --config source="$METRICS",target=/etc/prometheus/prometheus.yml \
  --mount type=bind,source=/usr/bin/prometheus,target=/usr/local/bin/prometheus,readonly \
  --mount type=bind,source=/usr/bin/promtool,target=/usr/local/bin/promtool,readonly \
  ferrite/deploy-base prometheus --config.file=/etc/prometheus/prometheus.yml \
  --storage.tsdb.path=/tmp/prometheus >/dev/null
tasks=$(docker service ps -q --filter desired-state=running "${STACK}_ferrite" | wc -l)
# One PromQL figure from that Prometheus, through promtool in its task.
promql() {
  local task
  task=$(docker ps -q --filter "label=com.docker.swarm.service.name=$METRICS" | head -1)
  [[ -n $task ]] || return 0
  docker exec "$task" promtool query instant http://127.0.0.1:9090 "$1" 2>/dev/null \
    | sed -n 's/^{} => \([0-9.]*\) @.*/\1/p' || true
}
targets= scraped=
for _ in $(seq 60); do
  targets=$(promql 'count(up{job="ferrite"})')
  scraped=$(promql 'count(ferrite_store_up{job="ferrite"})')
  [[ $targets == "$tasks" && $scraped == "$tasks" ]] && break
  sleep 1
done
[[ $targets == "$tasks" && $scraped == "$tasks" ]] \
  || fail "Prometheus has ${targets:-no} targets, ${scraped:-none} scraped, for $tasks Ferrite tasks"
log "Prometheus through tasks.ferrite: $scraped of $tasks Ferrite tasks scraped with the token"

# Redis and PostgreSQL refuse clients without the password.
answer=$(docker exec "$redis" redis-cli ping 2>&1 || true)
[[ $answer == *NOAUTH* ]] || fail "Redis without a password answered: $answer"
log "Redis without a password: $answer"
answer=$(docker exec "$postgres" psql -h 127.0.0.1 -U ferrite -d ferrite -w -c 'select 1' 2>&1 || true)
[[ $answer == *"no password supplied"* ]] || fail "PostgreSQL without a password answered: $answer"
log "PostgreSQL without a password: $answer"
