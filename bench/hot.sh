#!/usr/bin/env bash
# Hot call benchmark: POST /r/bench/hello through Ferrite to ferrite/hot-hello
# (format http, max_concurrency 8: containers that stay up and serve one
# HTTP/1.1 request at a time over their stdio, reached through a unix socket
# the init bridges) against the baseline without Ferrite: the same image run
# with `docker run -i --rm`, the same request written to its stdin and the
# response read from its stdout, so every byte goes through the engine's
# attach relay. At concurrency 1 and 8 (one container per client for the
# baseline, eight in Ferrite's pool), then cold calls (ferrite/hello, format
# default) at concurrency 4 on the same server for the hot/cold ratio. The
# client is bench/hotclient (Rust, std only): HTTP/1.1 keep-alive TCP with
# TCP_NODELAY for Ferrite, Instant around each request, nearest-rank
# percentiles, CPU per call of every process from /proc. Prints a table and
# writes it to its section of docs/benchmarks.md. Takes about a minute
# (plus the builds).
#
#   bench/hot.sh    # N1=20000 N8=5000 SECONDS_MAX=10 WARMUP=500 COLD_CLIENTS=4 COLD_SECONDS=15
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-20000}              # measured calls at concurrency 1
N8=${N8:-5000}               # measured calls per client at concurrency 8
SECONDS_MAX=${SECONDS_MAX:-10} # each measured run stops after this many seconds anyway
WARMUP=${WARMUP:-500}        # unmeasured calls per client before each run
COLD_CLIENTS=${COLD_CLIENTS:-4}
COLD_SECONDS=${COLD_SECONDS:-15}
NODE=bench-hot
IMAGE=ferrite/hot-hello
COLD_IMAGE=ferrite/hello
PREFIX=bench-hot-base-$$ # names of the baseline containers: $PREFIX-c1-0, $PREFIX-c8-0..7
BENCH=hot.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

log "building ferrite, bench/hotclient and the images"
build hot-hello hello
WORK=$(mktemp -d)
PID=
MEASURED=$(date +%s) # the builds are not part of the run time

base_containers() { docker ps -aq --filter "name=^/$PREFIX-" | wc -l; }

cleanup() {
  local status=$? left
  stop_server
  left=$(base_containers)
  if [[ $left -ne 0 ]]; then
    log "$left baseline container(s) $PREFIX-* left; removing them"
    docker ps -aq --filter "name=^/$PREFIX-" | xargs -r docker rm -f >/dev/null 2>&1 || true
    status=1
  fi
  sweep_node_containers || status=1
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT

require_no_node_containers

# Share of the machine's CPU busy over one second, to see other load.
busy_pct() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x); split(b, y)
    busy = (y[2]+y[3]+y[4]+y[7]+y[8]+y[9]) - (x[2]+x[3]+x[4]+x[7]+x[8]+x[9])
    idle = (y[5]+y[6]) - (x[5]+x[6])
    printf "%.0f", 100 * busy / (busy + idle) }'
}
BUSY_BEFORE=$(busy_pct)
log "machine busy before the run: $BUSY_BEFORE %"

# 1. Baseline: docker run -i, no server running.
log "baseline c=1: $N1 calls (or ${SECONDS_MAX} s) over docker run -i stdio"
"$CLIENT" stdio "$IMAGE" "$PREFIX-c1" 1 "$WARMUP" "$N1" "$SECONDS_MAX" >"$WORK/base1.json"
log "baseline c=8: 8 x $N8 calls (or ${SECONDS_MAX} s), one container per client"
"$CLIENT" stdio "$IMAGE" "$PREFIX-c8" 8 "$WARMUP" "$N8" "$SECONDS_MAX" >"$WORK/base8.json"
sleep 1 # the CLIs have exited; --rm may still be removing
BASE_LEFT=$(base_containers)

# 2. Ferrite.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
FERRITE_NODE_ID=$NODE LOG_LEVEL=warn "$BIN" server --host 127.0.0.1 --port "$PORT" \
  --db-url "sqlite://$WORK/f.db" >/dev/null 2>"$WORK/server.log" &
PID=$!
up=
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && { up=1; break; }; sleep 0.1; done
[[ -n $up ]] || { log "the server did not come up:"; cat "$WORK/server.log" >&2; exit 1; }
curl -sf -o /dev/null -X POST "$URL/v1/apps" -d '{"app":{"name":"bench"}}'
curl -sf -o /dev/null -X POST "$URL/v1/apps/bench/routes" \
  -d "{\"route\":{\"path\":\"/hello\",\"image\":\"$IMAGE\",\"format\":\"http\",\"max_concurrency\":8}}"
curl -sf -o /dev/null -X POST "$URL/v1/apps/bench/routes" \
  -d "{\"route\":{\"path\":\"/cold\",\"image\":\"$COLD_IMAGE\"}}"

log "Ferrite warm-up: 8 clients x $WARMUP calls"
"$CLIENT" http "$URL/r/bench/hello" 8 "$WARMUP" 0 0 >"$WORK/warm.json"
HOT_WARM=$(docker ps -q --filter "label=org.ferrite.node=$NODE" | wc -l)
log "Ferrite c=1: $N1 calls (or ${SECONDS_MAX} s); $HOT_WARM hot containers up"
"$CLIENT" http "$URL/r/bench/hello" 1 "$WARMUP" "$N1" "$SECONDS_MAX" >"$WORK/hot1.json"
log "Ferrite c=8: 8 x $N8 calls (or ${SECONDS_MAX} s)"
"$CLIENT" http "$URL/r/bench/hello" 8 "$WARMUP" "$N8" "$SECONDS_MAX" >"$WORK/hot8.json"
HOT_AFTER=$(docker ps -q --filter "label=org.ferrite.node=$NODE" | wc -l)

# 3. Cold calls on the same server (one warm-up call per client).
log "cold c=$COLD_CLIENTS: ${COLD_SECONDS} s of $COLD_IMAGE"
"$CLIENT" http "$URL/r/bench/cold" "$COLD_CLIENTS" 1 1000000 "$COLD_SECONDS" >"$WORK/cold.json"
stop_server
LEFT=$(node_containers)

ELAPSED=$(($(date +%s) - MEASURED))
TOTAL=$(($(date +%s) - BEGAN))
MEM_GIB=$(awk '/^MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)
DOCKER_VERSION=$(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)

TABLE=$(python3 - "$WORK" "$HOT_WARM" "$HOT_AFTER" "$LEFT" "$BASE_LEFT" "$BUSY_BEFORE" <<'PY'
import json, sys
work, hot_warm, hot_after, left, base_left, busy_before = sys.argv[1:]
get = lambda name: json.load(open(f"{work}/{name}.json"))
b1, b8, f1, f8, cold = (get(n) for n in ("base1", "base8", "hot1", "hot8", "cold"))
for r in (b1, b8, f1, f8, cold):
    if not r["ok"]:
        sys.exit(f"no successful calls in a run: {json.dumps(r)}")

ms = lambda v: f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"
signed = lambda v: f"{v:+.3f} ms"  # negative: Ferrite is faster
met = lambda ok: "met" if ok else "**not met**"

def errs(r):
    bad = r["errors"] + r["bad_body"] + r["warmup_errors"]
    return "" if not bad else (f", **{r['errors']} errors, {r['bad_body']} wrong bodies, "
                               f"{r['warmup_errors']} warm-up errors** {r['statuses']} {r['first_error'] or ''}")

def run(r):
    return (f"p50 {ms(r['p50_ms'])}, p99 {ms(r['p99_ms'])}, p99.9 {ms(r['p999_ms'])}, "
            f"max {ms(r['max_ms'])}; {r['rate_per_s']:,.0f} calls/s ({r['ok']:,} calls in {r['wall_s']:.1f} s){errs(r)}")

def cpu(r):
    procs = r["cpu_us_per_call_by_process"]
    top = list(procs.items())[:5]
    other = r["cpu_us_per_call"] - sum(v for _, v in top)
    parts = ", ".join(f"{k} {v:.0f}" for k, v in top)
    return f"{r['cpu_us_per_call']:.0f} µs ({parts}; other {max(other, 0):.0f}); machine {r['machine_busy_pct']:.0f} % busy"

def compare(b, f):
    d50, d99 = f["p50_ms"] - b["p50_ms"], f["p99_ms"] - b["p99_ms"]
    return (f"p50 {f['p50_ms'] / b['p50_ms']:.2f}× (Ferrite adds {signed(d50)}), "
            f"p99 {f['p99_ms'] / b['p99_ms']:.2f}× (adds {signed(d99)}), "
            f"throughput {f['rate_per_s'] / b['rate_per_s']:.2f}×"), d50, d99, f["rate_per_s"] / b["rate_per_s"]

c1, d50_1, d99_1, t1 = compare(b1, f1)
c8, d50_8, d99_8, t8 = compare(b8, f8)
hot_cold = f8["rate_per_s"] / cold["rate_per_s"]
base = "`docker run -i --rm ferrite/hot-hello`, request written to its stdin (the engine's attach relay)"
rows = [
    ("client", "`bench/hotclient` (Rust, std only), one thread per client: Ferrite over HTTP/1.1 keep-alive TCP "
               "(TCP_NODELAY), one connection per thread; baseline over the `docker run -i` CLI's stdio, one container per "
               "thread; `Instant` around each request, after "
               f"{b1['warmup_per_client']} warm-up calls per client; nearest-rank percentiles"),
    ("request", "`POST /r/bench/hello`, body `{\"name\":\"Johnny\"}`, answer `Hello Johnny!` (checked)"),
    (f"baseline c=1: {base}", run(b1)),
    ("Ferrite c=1: `ferrite/hot-hello`, `format: http`, `max_concurrency: 8`", run(f1)),
    ("Ferrite / baseline, c=1", c1),
    (f"baseline c=8: eight such containers, one per client", run(b8)),
    (f"Ferrite c=8: its pool of {hot_warm} hot containers", run(f8)),
    ("Ferrite / baseline, c=8", c8),
    (f"cold calls, c={cold['clients']}, {cold['seconds']:g} s: `ferrite/hello` (`format: default`) on the same server",
     f"{cold['rate_per_s']:.1f} calls/s ({cold['ok']} calls in {cold['wall_s']:.1f} s), p50 {ms(cold['p50_ms'])}, "
     f"p99 {ms(cold['p99_ms'])}{errs(cold)}"),
    ("hot c=8 calls/s / cold calls/s", f"{hot_cold:,.0f}"),
    ("CPU per call, all processes, baseline c=8", cpu(b8)),
    ("CPU per call, all processes, Ferrite c=8", cpu(f8)),
    ("CPU per call, all processes, baseline c=1 / Ferrite c=1", f"{b1['cpu_us_per_call']:.0f} µs / {f1['cpu_us_per_call']:.0f} µs"),
    ("target: Ferrite adds ≤ 0.3 ms at p50 (c=1, c=8)",
     f"{signed(d50_1)}, {signed(d50_8)}: {met(d50_1 <= 0.3 and d50_8 <= 0.3)}"),
    ("target: Ferrite adds ≤ 1 ms at p99 (c=1, c=8)",
     f"{signed(d99_1)}, {signed(d99_8)}: {met(d99_1 <= 1 and d99_8 <= 1)}"),
    ("target: hot throughput ≥ 0.8 × baseline (c=1, c=8)", f"{t1:.2f}, {t8:.2f}: {met(t1 >= 0.8 and t8 >= 0.8)}"),
    ("target: hot ≥ 100 × cold calls/s", f"{hot_cold:,.0f}: {met(hot_cold >= 100)}"),
    ("target: hot call through Ferrite faster at p50 than the attach baseline (c=1, c=8)",
     f"{ms(f1['p50_ms'])} vs {ms(b1['p50_ms'])}, {ms(f8['p50_ms'])} vs {ms(b8['p50_ms'])}: "
     f"{met(f1['p50_ms'] < b1['p50_ms'] and f8['p50_ms'] < b8['p50_ms'])}"),
    ("hot containers after the warm-up / after the c=8 run", f"{hot_warm} / {hot_after}"),
    ("containers left after shutdown (SIGTERM) / baseline containers left", f"{left} / {base_left}"),
    ("machine busy before the run (1 s sample)", f"{busy_before} %"),
]
print("| measure | value |\n| --- | --- |")
for k, v in rows:
    print(f"| {k} | {v} |")
PY
)
echo "$TABLE"

python3 - "$TABLE" "$(nproc)" "$MEM_GIB" "$(date -u +%Y-%m-%d)" "$DOCKER_VERSION" "$ELAPSED" "$(uname -r)" <<'PY' |
import sys
table, cores, mem, day, docker, elapsed, kernel = sys.argv[1:]
heading = "## Hot calls (`bench/hot.sh`)"
section = (f"{heading}\n\n{day}, {cores} cores, {mem} GiB memory, Linux {kernel}, Docker {docker}, release build, "
           f"embedded SQLite, `LOG_LEVEL=warn`; client, server and containers on the same machine; "
           f"the run took {elapsed} s (builds not counted).\n\n"
           "The baseline's bytes go client → pipe → `docker` CLI → dockerd (attach) → containerd-shim → "
           "the function's stdin, and back the same way; Ferrite's go client → TCP → `ferrite` → unix socket → "
           "the init in the container → pipe → the function. A negative \"adds\" means Ferrite is faster. "
           "CPU per call is every process's CPU time over the measured run (from `/proc`) divided by its calls.\n\n"
           f"{table}\n")
sys.stdout.write(section)
PY
  write_doc_section "Hot calls (\`bench/hot.sh\`)"
log "written to docs/benchmarks.md (run took ${ELAPSED} s, ${TOTAL} s with the builds)"
if [[ $LEFT -ne 0 || $BASE_LEFT -ne 0 ]]; then exit 1; fi
