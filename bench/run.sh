#!/usr/bin/env bash
# Every benchmark in turn: the management API (bench/mgmt.sh), cold calls
# (bench/cold.sh), hot calls (bench/hot.sh), async calls (bench/async.sh),
# nodes behind HAProxy (bench/cluster.sh) and routes as Swarm services
# (bench/services.sh). Each prints its table and
# writes its own section of docs/benchmarks.md; a failing one does not stop
# the others, but makes this exit non-zero. About 9 minutes on 2 cores.
# bench/chaos.sh (faults injected under load) and bench/first-function.sh
# (from `ferrite init` to the first answer, per template) are not among
# them: run them alone.
#
#   bench/run.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BEGAN=$(date +%s)
failed=()
for bench in mgmt cold hot async cluster services; do
  echo "== bench/$bench.sh" >&2
  start=$(date +%s)
  if "bench/$bench.sh"; then
    echo "== bench/$bench.sh done in $(($(date +%s) - start)) s" >&2
  else
    echo "== bench/$bench.sh FAILED (exit $?) after $(($(date +%s) - start)) s" >&2
    failed+=("$bench")
  fi
done
echo "== all benchmarks in $(($(date +%s) - BEGAN)) s; figures in docs/benchmarks.md" >&2
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "== failed: ${failed[*]}" >&2
  exit 1
fi
