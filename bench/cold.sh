#!/usr/bin/env bash
# Cold call benchmark: POST /r/bench/hello (ferrite/hello, format default,
# one fresh container per call) against `docker run --rm -i ferrite/hello`
# measured in the same run, with and without containers started ahead, and
# at concurrency 4 (against `docker run --rm` at the same concurrency). The client is bench/coldload.py (Python http.client on a
# persistent connection, time.perf_counter). Prints a table and writes it to
# its section of docs/benchmarks.md. Takes about 3 minutes.
#
#   bench/cold.sh    # N_DOCKER=30 N_PRESTART=200 N_COLD=30 PAUSE_MS=300
#                    # CLIENTS=4 CONC_SECONDS=20 CONC_MAX=400 WARMUP=5
set -euo pipefail
cd "$(dirname "$0")/.."

N_DOCKER=${N_DOCKER:-30}
N_PRESTART=${N_PRESTART:-200}
N_COLD=${N_COLD:-30}
PAUSE_MS=${PAUSE_MS:-300}
CLIENTS=${CLIENTS:-4}
CONC_SECONDS=${CONC_SECONDS:-20}
CONC_MAX=${CONC_MAX:-400}
WARMUP=${WARMUP:-5}
NODE=bench-cold
IMAGE=ferrite/hello
BODY='{"name":"Johnny"}'
BENCH=cold.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

release_ferrite
scripts/images.sh hello >&2
LOAD=(python3 bench/coldload.py)
WORK=$(mktemp -d)
PID=
SAMPLER=

cleanup() {
  local status=$?
  stop_pid "$SAMPLER"
  stop_server
  sweep_node_containers || status=1
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

require_no_node_containers

# start_server NAME [VAR=VALUE...]: one server on a free port over the same
# store (URL and CALL name it), logging at info level (one `call finished ... prestarted=...` line
# per call) to $WORK/NAME.log.
start_server() {
  local name=$1 port
  shift
  port=$(free_port)
  env FERRITE_NODE_ID=$NODE LOG_LEVEL=info LOG_FORMAT=text "$@" \
    "$BIN" server --host 127.0.0.1 --port "$port" --db-url "sqlite://$WORK/f.db" \
    2>"$WORK/$name.log" >/dev/null &
  PID=$!
  URL="http://127.0.0.1:$port"
  CALL="$URL/r/bench/hello"
  for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && return 0; sleep 0.1; done
  log "server $name did not come up:"
  cat "$WORK/$name.log" >&2
  exit 1
}

# Lines in a server log so far, to count the next phase's calls only.
log_lines() { wc -l <"$WORK/$1.log"; }

# 1. Baseline: docker run, with no server running (one unmeasured run first).
log "baseline: $N_DOCKER x docker run --rm -i $IMAGE"
echo "$BODY" | docker run --rm -i "$IMAGE" >/dev/null
"${LOAD[@]}" docker "$N_DOCKER" "$IMAGE" "$BODY" >"$WORK/docker.json"
log "baseline: docker run --rm -i $IMAGE at concurrency $CLIENTS, ${CONC_SECONDS} s or $CONC_MAX runs"
"${LOAD[@]}" dockerconc "$IMAGE" "$CLIENTS" "$CONC_SECONDS" "$CONC_MAX" "$BODY" >"$WORK/dockerconc.json"

# 2. Ferrite with containers started ahead (default settings).
start_server prestart
curl -sf -o /dev/null -X POST "$URL/v1/apps" -d '{"app":{"name":"bench"}}'
curl -sf -o /dev/null -X POST "$URL/v1/apps/bench/routes" \
  -d "{\"route\":{\"path\":\"/hello\",\"image\":\"$IMAGE\"}}"
log "starting ahead: $WARMUP warm-up calls 1 s apart, then $N_PRESTART calls ${PAUSE_MS} ms apart"
"${LOAD[@]}" seq "$CALL" "$WARMUP" 1000 "$BODY" >/dev/null
FROM=$(($(log_lines prestart) + 1))
"${LOAD[@]}" seq "$CALL" "$N_PRESTART" "$PAUSE_MS" "$BODY" >"$WORK/prestart.json"
"${LOAD[@]}" log "$WORK/prestart.log" "$FROM" >"$WORK/prestart-log.json"

# 4. Concurrency with starting ahead, sampling the node's live containers.
log "concurrency $CLIENTS: ${CONC_SECONDS} s or $CONC_MAX calls"
(while :; do docker ps -q --filter "label=org.ferrite.node=$NODE" | wc -l; sleep 0.1; done) \
  >"$WORK/alive.txt" 2>/dev/null &
SAMPLER=$!
FROM=$(($(log_lines prestart) + 1))
"${LOAD[@]}" conc "$CALL" "$CLIENTS" "$CONC_SECONDS" "$CONC_MAX" "$BODY" >"$WORK/conc.json"
stop_pid "$SAMPLER"
SAMPLER=
"${LOAD[@]}" log "$WORK/prestart.log" "$FROM" >"$WORK/conc-log.json"
ALIVE_MAX=$(sort -n "$WORK/alive.txt" | tail -1)
ALIVE_SAMPLES=$(wc -l <"$WORK/alive.txt")
stop_server
LEFT_PRESTART=$(node_containers)

# 3. Ferrite without starting ahead: the same store, FERRITE_PRESTART_MAX=0.
start_server cold FERRITE_PRESTART_MAX=0
log "no starting ahead: 1 warm-up call, then $N_COLD calls ${PAUSE_MS} ms apart"
"${LOAD[@]}" seq "$CALL" 1 0 "$BODY" >/dev/null
FROM=$(($(log_lines cold) + 1))
"${LOAD[@]}" seq "$CALL" "$N_COLD" "$PAUSE_MS" "$BODY" >"$WORK/cold.json"
"${LOAD[@]}" log "$WORK/cold.log" "$FROM" >"$WORK/cold-log.json"
stop_server
LEFT=$(node_containers)

ELAPSED=$(($(date +%s) - BEGAN))
MEM_GIB=$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
DOCKER_VERSION=$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)

TABLE=$(python3 - "$WORK" "$PAUSE_MS" "$CONC_SECONDS" "$CONC_MAX" "$ALIVE_MAX" "$ALIVE_SAMPLES" \
  "$LEFT_PRESTART" "$LEFT" <<'PY'
import json, sys
work, pause, conc_s, conc_max, alive_max, alive_n, left_prestart, left = sys.argv[1:]
get = lambda name: json.load(open(f"{work}/{name}.json"))
d, dc, p, pl, c, cl, k, kl = (get(n) for n in
    ("docker", "dockerconc", "prestart", "prestart-log", "conc", "conc-log", "cold", "cold-log"))
ms = lambda v: f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"
p99 = lambda r: (f"p99 {ms(r['p99_ms'])} (= max of {r['ok']})" if r["p99_is_max"]
                 else f"p99 {ms(r['p99_ms'])}, max {ms(r['max_ms'])}")
errs = lambda r: "" if not r["errors"] and not r["bad_body"] else \
    f", **{r['errors']} errors, {r['bad_body']} wrong bodies** {r.get('statuses', '')}"
ratio_p, ratio_k = p["p50_ms"] / d["p50_ms"], k["p50_ms"] / d["p50_ms"]
rows = [
    ("client", "`bench/coldload.py`: Python `http.client`, one persistent connection per client, "
               "`time.perf_counter()` around each request; nearest-rank percentiles"),
    (f"baseline `echo '{{\"name\":\"Johnny\"}}' \\| docker run --rm -i ferrite/hello`, {d['n']} sequential",
     f"p50 {ms(d['p50_ms'])}, {p99(d)}, {d['rate_per_s']:.2f} runs/s{errs(d)}"),
    (f"Ferrite, starting ahead (defaults), {p['n']} sequential calls {pause} ms apart",
     f"p50 {ms(p['p50_ms'])}, {p99(p)}; server-side p50 {ms(pl['server_p50_ms'])}{errs(p)}"),
    ("ratio Ferrite p50 / docker run p50 (target ≤ 0.05)",
     f"{ratio_p:.3f} ({'met' if ratio_p <= 0.05 else '**not met**'})"),
    ("calls that found a container started ahead (server log `prestarted=true`)",
     f"{pl['prestarted_true']} of {pl['calls']}"),
    (f"Ferrite, no starting ahead (`FERRITE_PRESTART_MAX=0`), {k['n']} sequential calls {pause} ms apart",
     f"p50 {ms(k['p50_ms'])}, {p99(k)}; {kl['prestarted_true']} of {kl['calls']} started ahead{errs(k)}"),
    ("ratio no-starting-ahead p50 / docker run p50", f"{ratio_k:.2f}"),
    (f"concurrency {c['clients']}, starting ahead, {conc_s} s or {conc_max} calls",
     f"{c['rate_per_s']:.1f} calls/s ({c['n']} calls in {c['wall_s']:.1f} s), p50 {ms(c['p50_ms'])}, "
     f"{p99(c)}, errors (non-200) {c['errors']}, wrong bodies {c['bad_body']}; "
     f"{cl['prestarted_true']} of {cl['calls']} started ahead"),
    (f"baseline: `docker run --rm -i` at concurrency {dc['clients']}, {conc_s} s or {conc_max} runs",
     f"{dc['rate_per_s']:.1f} runs/s ({dc['n']} runs in {dc['wall_s']:.1f} s), p50 {ms(dc['p50_ms'])}, {p99(dc)}{errs(dc)}"),
    (f"Ferrite / baseline at concurrency {c['clients']} (target ≥ 0.9), Ferrite's p99 / p50 (target ≤ 2)",
     f"{c['rate_per_s'] / dc['rate_per_s']:.2f}, {c['p99_ms'] / c['p50_ms']:.2f}"),
    ("most containers alive at once during the concurrency run",
     f"{alive_max} (`docker ps` every ~100 ms, {alive_n} samples)"),
    ("containers left after shutdown (SIGTERM)",
     f"{left}" + ("" if left_prestart == "0" else f" (after the first server: {left_prestart})")),
]
with open(f"{work}/gap", "w") as f:
    f.write(f"cold calls, c={c['clients']}\t{c['rate_per_s']:.1f} calls/s, p50 {ms(c['p50_ms'])}, p99 {ms(c['p99_ms'])}\t"
            f"{dc['rate_per_s']:.1f} runs/s of docker run --rm\t{c['rate_per_s'] / dc['rate_per_s']:.2f}; p99/p50 "
            f"{c['p99_ms'] / c['p50_ms']:.2f}\t≥ 0.9; p99/p50 ≤ 2\n")
print("| measure | value |\n| --- | --- |")
for k_, v in rows:
    print(f"| {k_} | {v} |")
PY
)
echo "$TABLE"
IFS=$'\t' read -r -a GAP <"$WORK/gap"
gap_row "${GAP[@]}"

python3 - "$TABLE" "$(nproc)" "$MEM_GIB" "$(date -u +%Y-%m-%d)" "$DOCKER_VERSION" "$ELAPSED" <<'PY' |
import sys
table, cores, mem, day, docker, elapsed = sys.argv[1:]
heading = "## Cold calls (`bench/cold.sh`)"
section = (f"{heading}\n\n{day}, {cores} cores, {mem} GiB memory, Docker {docker}, release build, "
           f"embedded SQLite; client and server on the same machine; the whole run took {elapsed} s.\n\n"
           f"{table}\n")
sys.stdout.write(section)
PY
  write_doc_section "Cold calls (\`bench/cold.sh\`)"
log "written to docs/benchmarks.md (run took ${ELAPSED} s)"
if [[ $LEFT -ne 0 ]]; then exit 1; fi
