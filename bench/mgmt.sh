#!/usr/bin/env bash
# Management API benchmark: GET of one route among 10,000 stored, against
# GET /version on the same server (the baseline: same HTTP stack, no store),
# with wrk. Prints a table and writes it to docs/benchmarks.md.
#
#   bench/mgmt.sh            # ROUTES=10000 DURATION=10 CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."

ROUTES=${ROUTES:-10000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${BENCH_PORT:-18080}
BENCH=mgmt.sh
# shellcheck source=bench/lib.sh
source bench/lib.sh

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
release_ferrite
WORK=$(mktemp -d)
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT

LOG_LEVEL=warn "$BIN" server --host 127.0.0.1 --port "$PORT" --db-url "sqlite://$WORK/ferrite.db" \
  >"$WORK/server.log" 2>&1 &
PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$URL/health" >/dev/null && break; sleep 0.1; done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
sleep 1
RSS_IDLE=$(rss_kib)

echo "creating $ROUTES routes..." >&2
START=$(date +%s.%N)
seq 1 "$ROUTES" | xargs -P 8 -I{} curl -sf -o /dev/null -X POST "$URL/v1/apps/bench/routes" \
  -d '{"route":{"path":"/r{}","image":"ferrite/hello"}}'
CREATE_S=$(awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
[[ $(curl -sf "$URL/v1/apps/bench/routes" | grep -o '"path"' | wc -l) -eq $ROUTES ]] || { echo "routes missing" >&2; exit 1; }
sleep 1
RSS_LOADED=$(rss_kib)

# wrk prints "Requests/sec: N" and a latency distribution with --latency.
run_wrk() { wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$1"; }
field() { awk -v k="$1" '$1 == k {print $2}'; }
BASE=$(run_wrk "$URL/version")
ROUTE=$(run_wrk "$URL/v1/apps/bench/routes/r$((ROUTES / 2))")
BASE_RPS=$(echo "$BASE" | field "Requests/sec:")
ROUTE_RPS=$(echo "$ROUTE" | field "Requests/sec:")
RATIO=$(awk -v a="$ROUTE_RPS" -v b="$BASE_RPS" 'BEGIN {printf "%.2f", a / b}')
CREATE_RPS=$(awk -v n="$ROUTES" -v s="$CREATE_S" 'BEGIN {printf "%.0f", n / s}')

TABLE=$(cat <<TABLE
| measure | value |
| --- | --- |
| routes stored | $ROUTES (created through the API in $CREATE_S s by 8 curl clients: $CREATE_RPS creates/s) |
| GET /v1/apps/bench/routes/r$((ROUTES / 2)) | $ROUTE_RPS req/s, p50 $(echo "$ROUTE" | field "50%"), p99 $(echo "$ROUTE" | field "99%") |
| baseline GET /version (no store) | $BASE_RPS req/s, p50 $(echo "$BASE" | field "50%"), p99 $(echo "$BASE" | field "99%") |
| ratio route GET / baseline | $RATIO |
| RSS idle, empty store | $((RSS_IDLE / 1024)) MiB |
| RSS idle, $ROUTES routes stored | $((RSS_LOADED / 1024)) MiB |
TABLE
)
echo "$TABLE"

python3 - "$TABLE" "$(nproc)" "$(date -u +%Y-%m-%d)" "$DURATION" "$CONNECTIONS" <<'PY' |
import sys
table, cores, day, duration, conns = sys.argv[1:]
section = (f"## Management API (`bench/mgmt.sh`)\n\n{day}, {cores} cores, release build, embedded SQLite; "
           f"wrk -t2 -c{conns} -d{duration}s on the same machine.\n\n{table}\n")
sys.stdout.write(section)
PY
  write_doc_section "Management API (\`bench/mgmt.sh\`)"
log "written to docs/benchmarks.md"
