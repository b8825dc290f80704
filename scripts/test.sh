#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it, on a fresh
# machine: lint, then every test of the workspace against real components.
# Services a test needs (a registry, a TLS proxy in front of the engine,
# PostgreSQL, Redis, HAProxy) are started by that test through scripts/ and
# stopped when it ends; the Debian packages are installed here first. The
# engine is made a single-node Swarm manager when it is in no Swarm (and
# left again at the end), and the images are built locally: the example
# functions, the base images of the function templates (stand-ins for the
# official ones, from Debian's packages) and the deployment images
# (Ferrite's own among them). Every container, service and network a test
# creates carries Ferrite's labels and is removed when the test ends.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component list --installed 2>/dev/null | grep -E '^(rustfmt|clippy)' \
  || rustup component add rustfmt clippy

step "docker engine"
docker version --format 'engine {{.Server.Version}}, API {{.Server.APIVersion}}' \
  || { echo "the tests need a running Docker engine" >&2; exit 1; }

step "Debian packages the tests use"
# Installed once here, not by tests running in parallel (dpkg has one lock).
apt_install busybox-static docker-registry apache2-utils nginx libnginx-mod-stream openssl curl redis-server postgresql haproxy prometheus chromium chromium-driver zsh fish

LOG=$(mktemp)
SWARM=
cleanup() {
  rm -f "$LOG"
  # Services of test servers that a failed test left (owner test-*), then
  # the network they shared (crates/ferrite/tests/common).
  docker service ls --filter label=org.ferrite.owner --format '{{.ID}} {{.Name}}' 2>/dev/null \
    | while read -r id _; do
        case $(docker service inspect -f '{{index .Spec.Labels "org.ferrite.owner"}}' "$id" 2>/dev/null) in
          test-*) docker service rm "$id" >/dev/null 2>&1 || true ;;
        esac
      done
  for _ in $(seq 30); do
    docker network inspect ferrite-test-services >/dev/null 2>&1 || break
    docker network rm ferrite-test-services >/dev/null 2>&1 && break
    sleep 1
  done
  # The Docker-in-Docker nodes of a multi-node Swarm that a failed test
  # left (scripts/swarm-nodes.sh), with their volumes and network.
  docker ps -aq --filter label=org.ferrite.swarm-nodes | xargs -r docker rm -f -v >/dev/null 2>&1 || true
  docker volume ls -q --filter label=org.ferrite.swarm-nodes | xargs -r docker volume rm >/dev/null 2>&1 || true
  docker network ls -q --filter label=org.ferrite.swarm-nodes | xargs -r docker network rm >/dev/null 2>&1 || true
  if [ "$SWARM" = initialised ]; then swarm_leave; fi
}
trap cleanup EXIT

step "single-node Swarm (the stack and service tests)"
SWARM=$(swarm_ensure)
echo "swarm: ${SWARM:-already active, kept}"

step "example function images (scripts/images.sh)"
scripts/images.sh

step "base images of the function templates (scripts/base-images.sh)"
scripts/base-images.sh

step "deployment images (scripts/deploy-images.sh, Ferrite's binary in the dev profile)"
FERRITE_IMAGE_PROFILE=dev scripts/deploy-images.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
status=0
cargo test --workspace --locked --no-fail-fast --lib --bins --tests 2>&1 | tee "$LOG" || status=$?

# One closing line over every test binary, so the total is read at a glance.
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "\nTotal: %d passed, %d failed, %d skipped\n", p, f, i }' "$LOG"
exit "$status"
