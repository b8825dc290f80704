#!/usr/bin/env bash
# Deploy deploy/stack.yml on this machine's Swarm for real and run the seed
# walk-through through its HAProxy, then remove everything it made. A Swarm
# that is already active is used as it is (and left so); an inactive one is
# initialised as a single node and left again at the end.
#
#   scripts/stack-smoke.sh      # needs the images of scripts/deploy-images.sh and scripts/images.sh hello
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

STACK=ferrite-smoke-$$
PORT=$(free_port)
PASSWORD=smoke-$RANDOM$RANDOM
LEFT_SWARM=
BEGAN=$(date +%s)
log() { echo "stack-smoke.sh [$(($(date +%s) - BEGAN)) s]: $*" >&2; }

for image in ferrite/ferrite ferrite/postgres ferrite/redis ferrite/haproxy ferrite/hello; do
  docker image inspect "$image" >/dev/null 2>&1 || { log "image $image is missing (scripts/deploy-images.sh, scripts/images.sh)"; exit 1; }
done

cleanup() {
  local status=$?
  log "removing stack $STACK"
  docker stack rm "$STACK" >/dev/null 2>&1 || true
  # Ferrite nodes remove their function containers on SIGTERM; wait for the
  # tasks, then the network and the volumes can go.
  for _ in $(seq 120); do
    [[ -z $(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK") ]] && break
    sleep 1
  done
  for _ in $(seq 30); do
    docker network rm "$STACK" >/dev/null 2>&1 || true
    docker volume rm "${STACK}_postgres-data" "${STACK}_redis-data" >/dev/null 2>&1 && break
    sleep 1
  done
  if [[ -n $LEFT_SWARM ]]; then
    docker swarm leave --force >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

if [[ $(swarm_ensure) == initialised ]]; then
  log "initialised a single-node Swarm (left again at the end)"
  LEFT_SWARM=1
fi

log "deploying deploy/stack.yml as $STACK, published on port $PORT"
POSTGRES_PASSWORD=$PASSWORD FERRITE_PORT=$PORT FERRITE_NETWORK=$STACK docker stack deploy -c deploy/stack.yml "$STACK" >/dev/null

URL=http://127.0.0.1:$PORT
up=
for _ in $(seq 90); do
  curl -sf "$URL/version" >/dev/null 2>&1 && { up=1; break; }
  sleep 1
done
if [[ -z $up ]]; then
  log "no answer through HAProxy"
  docker stack ps "$STACK" --no-trunc >&2
  for service in ferrite haproxy; do docker service logs --tail 20 "${STACK}_$service" >&2 2>&1 || true; done
  exit 1
fi
log "HAProxy answers: $(curl -sf "$URL/version")"

# The seed walk-through.
curl -sf -X POST "$URL/v1/apps" -d '{"app":{"name":"myapp"}}' >/dev/null
curl -sf -X POST "$URL/v1/apps/myapp/routes" -d '{"route":{"path":"/hello-sync","image":"ferrite/hello","type":"sync"}}' >/dev/null
answer=$(curl -sf -X POST "$URL/r/myapp/hello-sync" -d '{"name":"Johnny"}')
[[ $answer == "Hello Johnny!" ]] || { log "walk-through answered: $answer"; exit 1; }
log "walk-through through HAProxy: $answer"
curl -sf -X POST "$URL/v1/apps/myapp/routes" -d '{"route":{"path":"/later","image":"ferrite/hello","type":"async"}}' >/dev/null
id=$(curl -sf -X POST "$URL/r/myapp/later" -d '{"name":"Later"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["call_id"])')
status=
for _ in $(seq 60); do
  status=$(curl -sf "$URL/v1/apps/myapp/calls/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["call"]["status"])')
  [[ $status == success ]] && break
  sleep 1
done
[[ $status == success ]] || { log "async call $id is $status"; exit 1; }
log "async call $id: $status, output $(curl -sf "$URL/v1/apps/myapp/calls/$id/output")"
