#!/usr/bin/env bash
# Builds the images of Ferrite's production layout (deploy/), locally: no
# registry is reachable on Ferrite's machines, so nothing is pulled.
#
#   ferrite/ferrite   the statically linked `ferrite` binary on scratch
#   ferrite/postgres  PostgreSQL, Redis and HAProxy from Debian bookworm's
#   ferrite/redis     packages: one root filesystem made with debootstrap on
#   ferrite/haproxy   this machine, imported as ferrite/deploy-base, with a
#                     small Dockerfile each on top (deploy/NAME/Dockerfile)
#
# The debootstrap root filesystem is cached as a tarball (under
# FERRITE_DEPLOY_CACHE, default ~/.cache/ferrite-deploy), named by a hash of
# what goes into it; cargo's and Docker's caches do the rest, so a run with
# nothing changed takes seconds. Prints one line per image; exits non-zero
# if any build fails, with that build's output.
#
# Usage: scripts/deploy-images.sh [--fresh] [NAME...]
#   NAME     ferrite, postgres, redis, haproxy (default: all four)
#   --fresh  debootstrap again instead of using the cached root filesystem
#
# Environment: FERRITE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# FERRITE_DEPLOY_CACHE, CARGO_TARGET_DIR, FERRITE_IMAGE_PROFILE (cargo
# profile of the binary in ferrite/ferrite: release by default; the test
# suite uses dev, which it compiles anyway). debootstrap and chroot need root.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD

ALL=(ferrite postgres redis haproxy)
# The root filesystem of the Debian images (lib.sh).
ROOTFS_PACKAGES=(postgresql redis-server haproxy)
ROOTFS_TRIM=trim_rootfs
ROOTFS_CACHE=${FERRITE_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrite-deploy}
BASE=ferrite/deploy-base:latest
# glibc, linked statically (crt-static): the same binary runs FROM scratch
# and, as `ferrite watchdog`, inside any function image whatever its libc.
# Not musl: its target would have to come from rustup's servers, which CI
# machines do not reach; the glibc target is the toolchain's own. Naming
# the target keeps crt-static off build scripts and proc macros, and puts
# the build in its own directory, beside the dynamic one the tests use.
TARGET=x86_64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${FERRITE_IMAGE_PROFILE:-release}
case $PROFILE in dev) PROFILE_DIR=debug ;; *) PROFILE_DIR=$PROFILE ;; esac

ROOTFS_FRESH=0
names=()
for arg in "$@"; do
  case $arg in
    --fresh) ROOTFS_FRESH=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    ferrite | postgres | redis | haproxy) names+=("$arg") ;;
    *) echo "no such image: $arg (one of: ${ALL[*]})" >&2; exit 2 ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")

# The legacy builder: BuildKit needs the buildx plugin, which is not here.
export DOCKER_BUILDKIT=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# --- the Debian root filesystem --------------------------------------------

# Makes a debootstrapped tree an image's root filesystem: no default
# PostgreSQL cluster (the entry point makes one in the volume), no LLVM
# (PostgreSQL's JIT alone needs it: 130 MB; the entry point sets jit = off),
# no documentation, translations, package lists or downloaded packages, and
# none of the host's files debootstrap copied (Docker provides them).
# shellcheck disable=SC2317 # called through ROOTFS_TRIM (lib.sh)
trim_rootfs() {
  local r=$1 v pkgs
  for v in "$r"/etc/postgresql/*/main; do
    [ -d "$v" ] || continue
    v=${v%/main}; v=${v##*/}
    chroot "$r" pg_dropcluster "$v" main
  done
  # shellcheck disable=SC2016
  pkgs=$(chroot "$r" dpkg-query -W -f='${Package}\n' 'libllvm*' 'libz3-*' 2>/dev/null || true)
  if [ -n "$pkgs" ]; then
    # shellcheck disable=SC2086
    chroot "$r" dpkg --purge --force-depends $pkgs
  fi
  rm -rf "$r"/usr/lib/postgresql/*/lib/llvmjit* "$r"/usr/lib/postgresql/*/lib/bitcode
  rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
    "$r"/usr/share/locale/* "$r"/usr/share/i18n "$r"/usr/share/lintian \
    "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin \
    "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/log/apt/* \
    "$r"/etc/resolv.conf "$r"/etc/hostname "$r"/run/adduser
  # The data directories, owned by the users that run the servers: a
  # named volume mounted there starts with this owner and mode.
  chroot "$r" install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data
  chroot "$r" install -d -o postgres -g postgres -m 2775 /run/postgresql
  chroot "$r" install -d -o redis -g redis -m 750 /var/lib/redis
  chroot "$r" install -d -o haproxy -g haproxy -m 750 /var/lib/haproxy
  mkdir -p "$r"/usr/local/etc/haproxy
}

# Imports the root filesystem as $BASE (lib.sh) unless it is there already.
import_base() {
  rootfs_import "$BASE" "LABEL org.ferrite.deploy=base" \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]'
}

# --- ferrite/ferrite ---------------------------------------------------------

# Compiles the static binary and lays out the image's build context: the
# binary (stripped of its debug line tables: 3/4 of its size) only when it
# changed, so Docker's build cache keeps hitting.
ferrite_context() {
  local ctx="$TARGET_DIR/deploy-image" bin="$TARGET_DIR/$TARGET/$PROFILE_DIR/ferrite"
  RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --locked --profile "$PROFILE" -p ferrite --target "$TARGET"
  # A binary that still wants a dynamic loader would not start FROM scratch.
  if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
    echo "$bin is dynamically linked" >&2
    return 1
  fi
  mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/var/lib/ferrite"
  chmod 1777 "$ctx/rootfs/tmp"
  strip --strip-debug -o "$ctx/ferrite.tmp" "$bin"
  if cmp -s "$ctx/ferrite.tmp" "$ctx/rootfs/usr/local/bin/ferrite"; then
    rm -f "$ctx/ferrite.tmp"
  else
    mv -f "$ctx/ferrite.tmp" "$ctx/rootfs/usr/local/bin/ferrite"
  fi
  echo "$ctx"
}

# --- building and reporting ------------------------------------------------

# Builds ferrite/NAME; its report line goes to $logs/NAME.out, the output to
# $logs/NAME.log (shown only on failure).
build() {
  local name=$1 tag="ferrite/$1:latest" before start size ctx
  before=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  start=$(date +%s.%N)
  {
    if [ "$name" = ferrite ]; then
      ctx=$(ferrite_context) \
        && docker build --force-rm -t "$tag" -f deploy/ferrite/Dockerfile "$ctx"
    else
      docker build --force-rm -t "$tag" "deploy/$name"
    fi
  } >"$logs/$name.log" 2>&1 || { echo "FAILED    $tag" >"$logs/$name.out"; return 1; }
  image_outcome "$tag" "$before" "$start" "$(image_size "$tag")" >"$logs/$name.out"
}

# The Debian images, on the base made first (a failed base fails them all).
build_debian() {
  local name start before status=0
  start=$(date +%s.%N)
  before=$(docker image inspect -f '{{.Id}}' "$BASE" 2>/dev/null || true)
  if ! import_base >"$logs/base.log" 2>&1; then
    for name in "$@"; do
      echo "FAILED    ferrite/$name:latest (the base: $BASE)" >"$logs/$name.out"
      cp "$logs/base.log" "$logs/$name.log"
    done
    return 1
  fi
  image_outcome "$BASE" "$before" "$start" "$(image_size "$BASE")" >"$logs/base.out"
  # Each legacy-builder step is a container commit, mostly waiting: side by side.
  local pids=()
  for name in "$@"; do build "$name" & pids+=("$!"); done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return "$status"
}

# Reports one build; returns its status.
report() {
  local name=$1 status=$2
  cat "$logs/$name.out" 2>/dev/null || echo "FAILED    ferrite/$name:latest"
  if [ "$status" -ne 0 ] && [ -f "$logs/$name.log" ]; then cat "$logs/$name.log" >&2; fi
  return "$status"
}

# Ferrite's compile and the Debian images share nothing, so they run side by
# side: the one is CPU, the other mostly download and disk.
debian=()
for name in "${names[@]}"; do [ "$name" = ferrite ] || debian+=("$name"); done
pids=()
if printf '%s\n' "${names[@]}" | grep -qx ferrite; then
  build ferrite &
  pids+=("ferrite:$!")
fi
if [ ${#debian[@]} -gt 0 ]; then
  build_debian "${debian[@]}" &
  pids+=("debian:$!")
fi
failed=0
for entry in "${pids[@]}"; do wait "${entry#*:}" || failed=1; done
if [ -f "$logs/base.out" ]; then cat "$logs/base.out"; fi
for name in "${names[@]}"; do
  status=0
  grep -qv '^FAILED' "$logs/$name.out" 2>/dev/null || status=1
  report "$name" "$status" || failed=1
done

# Old versions of rebuilt images are left untagged; drop them.
docker image prune -f --filter label=org.ferrite.deploy >/dev/null
exit "$failed"
