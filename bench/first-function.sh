#!/usr/bin/env bash
# From an idea to a running function: for each runtime and format of the
# templates, the time from `ferrite init` in an empty folder to the first
# answer of the deployed function (init, then `ferrite deploy`, which builds
# the image through the Engine API and creates the route, then one call),
# and the size of the image. Baseline, in the same run: what the same work
# costs by hand with the docker CLI (`docker build` of the same folder under
# another name, then one `docker run` of it with the same request), so the
# ratio says what Ferrite adds to the build and the first start.
#
# The base images must be on the engine (scripts/base-images.sh where no
# registry is reachable; pulled otherwise). Both builds of a runtime start
# from the same cached base layers and differ in the function's name, so
# neither reuses the other's compiled layers. Prints a table and writes it
# to docs/benchmarks.md.
#
#   bench/first-function.sh            # RUNTIMES="rust go python node"
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIMES=${RUNTIMES:-rust go python node}
FORMATS=${FORMATS:-default http}
PORT=${BENCH_PORT:-18090}
BENCH=first-function.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

release_ferrite
WORK=$(mktemp -d)
NODE=bench-first-$$
RUN=$$
PID=
cleanup() {
  stop_server
  docker images -q --filter "label=org.ferrite.bench=$RUN" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

LOG_LEVEL=warn FERRITE_NODE_ID=$NODE "$BIN" server --host 127.0.0.1 --port "$PORT" \
  --db-url "sqlite://$WORK/ferrite.db" >"$WORK/server.log" 2>&1 &
PID=$!
export API_URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$API_URL/health" >/dev/null && break; sleep 0.1; done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
mib() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.1f", $1 / 1048576}'; }
# One request in the format's own terms, for the baseline's `docker run`.
request() {
  if [[ $1 == http ]]; then
    printf 'POST / HTTP/1.1\r\nHost: bench\r\nContent-Length: 15\r\n\r\n{"name":"Ada"}\n'
  else
    printf '{"name":"Ada"}\n'
  fi
}

ROWS=
for runtime in $RUNTIMES; do
  for format in $FORMATS; do
    name=first-$runtime-$format-$RUN
    # Baseline: the same template, built and run by hand.
    mkdir -p "$WORK/base-$name" "$WORK/$name"
    (cd "$WORK/base-$name" && "$BIN" init --runtime "$runtime" --format "$format" "base-$name" >/dev/null)
    start=$(now)
    docker build -q --label "org.ferrite.bench=$RUN" -t "base-$name:0.0.1" "$WORK/base-$name" >/dev/null
    answer=$(request "$format" | docker run -i --rm "base-$name:0.0.1" 2>/dev/null)
    base_s=$(since "$start")
    grep -q 'Ada' <<<"$answer" || { log "baseline $runtime/$format answered: $answer"; exit 1; }

    # Ferrite: init, deploy, first call.
    start=$(now)
    (cd "$WORK/$name" && "$BIN" init --runtime "$runtime" --format "$format" "$name" >/dev/null \
      && "$BIN" deploy bench --label "org.ferrite.bench=$RUN" >"$WORK/$name.deploy" 2>&1) \
      || { log "deploy of $runtime/$format failed:"; cat "$WORK/$name.deploy" >&2; exit 1; }
    url=$(grep -o 'http://[^ ]*/r/bench/[^ ]*' "$WORK/$name.deploy" | tail -1)
    answer=$(curl -sS -d '{"name":"Ada"}' "$url")
    ferrite_s=$(since "$start")
    grep -q 'Ada' <<<"$answer" || { log "$runtime/$format answered: $answer"; exit 1; }

    ratio=$(awk -v a="$ferrite_s" -v b="$base_s" 'BEGIN {printf "%.2f", a / b}')
    size=$(mib "$name:0.0.1")
    log "$runtime/$format: init to first answer ${ferrite_s} s (by hand ${base_s} s), image $size MiB"
    ROWS+="| $runtime | $format | $ferrite_s s | $base_s s | $ratio | $size MiB |"$'\n'
  done
done

TABLE=$(printf '%s\n%s\n%s' "| runtime | format | init to first answer | docker build + run by hand | ratio | image size |" \
  "| --- | --- | --- | --- | --- | --- |" "${ROWS%$'\n'}")
echo "$TABLE"

python3 - "$TABLE" "$(nproc)" "$(free -g | awk '/^Mem:/ {print $2}')" "$(date -u +%Y-%m-%d)" \
  "$(docker version -f '{{.Server.Version}}')" <<'PY' |
import sys
table, cores, mem, day, engine = sys.argv[1:]
section = (f"## From `ferrite init` to the first answer (`bench/first-function.sh`)\n\n"
           f"{day}, {cores} cores, {mem} GiB, Docker {engine}, release build, embedded SQLite, "
           "base images already on the engine, the function's own layers not cached. "
           "`init to first answer`: `ferrite init`, `ferrite deploy` (build through the Engine "
           "API, route created) and one call, timed together. The baseline builds the same "
           "template with `docker build` and runs it once with `docker run -i` and the same "
           "request. Image size as the engine reports it.\n\n"
           f"{table}\n")
sys.stdout.write(section)
PY
  write_doc_section "From \`ferrite init\` to the first answer (\`bench/first-function.sh\`)"
log "written to docs/benchmarks.md"
