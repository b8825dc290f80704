#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it, on a fresh
# machine: lint, then every test of the workspace against real components.
# Later suites add the services they need (PostgreSQL, Redis, Swarm) here,
# each started in a temporary directory and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component list --installed 2>/dev/null | grep -E '^(rustfmt|clippy)' \
  || rustup component add rustfmt clippy

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast --lib --bins --tests 2>&1 | tee "$LOG" || status=$?

# One closing line over every test binary, so the total is read at a glance.
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "\nTotal: %d passed, %d failed, %d skipped\n", p, f, i }' "$LOG"
exit "$status"
