#!/usr/bin/env bash
# Builds every example function image (examples/functions/*) as
# ferrite/<name>:latest, the ferrite/busybox base first. No registry is
# reachable on Ferrite's machines, so nothing is pulled: the base is Debian's
# static busybox on top of scratch. Examples with a main.rs (the hot ones)
# are a static binary on scratch instead, compiled here with a bare rustc
# (std only, so no crates to fetch). Docker's build cache makes a run with
# nothing changed take a second or two, so the test suite calls this once
# per run. Prints one line per image; exits non-zero if any build fails.
#
# Usage: scripts/images.sh [NAME...]   (default: all; the base is always built)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/../examples/functions"

BASE=busybox

# The static busybox (the `busybox` package's /bin/busybox is dynamic and
# would not run on scratch; busybox-static replaces it).
apt_install busybox-static
# Copied only when it differs, so the build cache keeps hitting.
cmp -s /bin/busybox "$BASE/busybox" || cp /bin/busybox "$BASE/busybox"

if [ $# -gt 0 ]; then
  names=("$@")
else
  names=()
  for d in */Dockerfile; do names+=("${d%/Dockerfile}"); done
fi

# The legacy builder: BuildKit needs the buildx plugin, which is not here.
export DOCKER_BUILDKIT=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# An example with a main.rs is one static binary: std only, no crates,
# compiled with a bare rustc (main.rs may be a link to another example's, as
# chaos-nobody's is: the same program as another user), into its build context
# as NAME/NAME (git-ignored) for the Dockerfile to COPY onto scratch. Only
# when main.rs is newer than the binary, so a run with nothing changed
# costs nothing here and the COPY stays cached. Written under a temporary
# name first: an interrupted compile must not leave a new-looking binary.
compile() {
  local name=$1 src="$1/main.rs" bin="$1/$1"
  [ -f "$src" ] || return 0
  if [ -f "$bin" ] && ! [ "$src" -nt "$bin" ]; then return 0; fi
  if ! "${RUSTC:-rustc}" --edition 2021 -C opt-level=3 -C panic=abort \
    -C target-feature=+crt-static -C strip=symbols -o "$bin.$$.tmp" "$src"; then
    rm -f "$bin.$$.tmp"
    return 1
  fi
  mv -f "$bin.$$.tmp" "$bin"
}

# Builds one image (compiling its binary first, if it has one); its report
# line goes to $logs/NAME.out, the output to $logs/NAME.log (shown only on
# failure).
build() {
  local name=$1 tag="ferrite/$1:latest" before start
  before=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  start=$(date +%s.%N)
  if ! compile "$name" >"$logs/$name.log" 2>&1 \
    || ! docker build --force-rm -t "$tag" "$name" >>"$logs/$name.log" 2>&1; then
    echo "FAILED    $tag" >"$logs/$name.out"
    return 1
  fi
  image_outcome "$tag" "$before" "$start" >"$logs/$name.out"
}

# Reports one build; returns its status.
report() {
  local name=$1 status=$2
  cat "$logs/$name.out"
  if [ "$status" -ne 0 ]; then cat "$logs/$name.log" >&2; fi
  return "$status"
}

for name in "${names[@]}"; do
  [ -f "$name/Dockerfile" ] || { echo "no such example: $name" >&2; exit 1; }
done

status=0
build "$BASE" || status=$?
report "$BASE" "$status" || exit 1

# The functions only share the base, so they build side by side: each
# legacy-builder step is a container commit of about a second, mostly
# waiting, so this is several times quicker than one after the other.
pids=()
for name in "${names[@]}"; do
  [ "$name" = "$BASE" ] && continue
  build "$name" &
  pids+=("$name:$!")
done
failed=0
for entry in "${pids[@]}"; do
  status=0
  wait "${entry#*:}" || status=$?
  report "${entry%%:*}" "$status" || failed=1
done

# Old versions of rebuilt examples are left untagged; drop them.
docker image prune -f --filter label=org.ferrite.example=true >/dev/null
exit "$failed"
