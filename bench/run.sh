#!/usr/bin/env bash
# Every benchmark in turn: the management API (bench/mgmt.sh), cold calls
# (bench/cold.sh), hot calls (bench/hot.sh), async calls (bench/async.sh),
# nodes behind HAProxy (bench/cluster.sh), routes as Swarm services
# (bench/services.sh) and the route lookup over many routes
# (bench/routes.sh). Each prints its table and writes its own section of
# docs/benchmarks.md; a failing one does not stop the others, but makes this
# exit non-zero. At the end it prints one table of every path where Ferrite
# wraps something (the engine, the queue, a task, a node), each figure with
# the baseline measured in the same run beside it, and records that table
# with the date, the machine and the engine version as the section
# "Gaps, one run of bench/run.sh". About 17 minutes on 2 cores, 7.5 of
# them the release build from nothing (2026-12-04: 991 s).
# bench/chaos.sh (faults injected under load) and bench/first-function.sh
# (from `ferrite init` to the first answer, per template) are not among
# them: run them alone.
#
#   bench/run.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BENCH=run
# shellcheck source=bench/lib.sh
source bench/lib.sh

BENCH_GAPS=$(mktemp)
export BENCH_GAPS
trap 'rm -f "$BENCH_GAPS"' EXIT

failed=()
for bench in mgmt cold hot async cluster services routes; do
  echo "== bench/$bench.sh" >&2
  start=$(date +%s)
  if "bench/$bench.sh"; then
    echo "== bench/$bench.sh done in $(($(date +%s) - start)) s" >&2
  else
    echo "== bench/$bench.sh FAILED (exit $?) after $(($(date +%s) - start)) s" >&2
    failed+=("$bench")
  fi
done
took=$(($(date +%s) - BEGAN))

table=$(
  echo "| path | Ferrite | baseline, same run | ratio | target |"
  echo "| --- | --- | --- | ---: | --- |"
  while IFS=$'\t' read -r path figure baseline ratio target; do
    echo "| $path | $figure | $baseline | $ratio | $target |"
  done <"$BENCH_GAPS"
)
echo "$table"

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) memory, Docker $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
write_doc_section "Gaps, one run of bench/run.sh" <<DOC
## Gaps, one run of bench/run.sh

$(date -u +%Y-%m-%d), $machine, release build; every figure and its baseline from the same run of
\`bench/run.sh\`, which took $took s$([[ ${#failed[@]} -ne 0 ]] && echo " (failed: ${failed[*]})"). Each bench's own section below has the details.

$table
DOC

echo "== all benchmarks in $took s; figures in docs/benchmarks.md" >&2
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "== failed: ${failed[*]}" >&2
  exit 1
fi
