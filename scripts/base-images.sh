#!/usr/bin/env bash
# Builds the base images of the function templates (crates/ferrite/templates)
# from Debian bookworm's packages, tagged with the names of the official
# Docker Hub images the templates' Dockerfiles name, so that those build and
# run unchanged where no registry is reachable:
#
#   debian:bookworm-slim        debootstrap (minbase), trimmed, imported
#   rust:1-slim-bookworm        + rustc-web, cargo-web (Rust 1.85)
#   golang:1-bookworm           + golang-go (Go 1.19)
#   python:3.11-slim-bookworm   + python3, python3-pip (Python 3.11)
#   node:18-bookworm-slim       + nodejs (Node 18; no npm: the template runs
#                               it only once a package-lock.json exists)
#
# The four runtimes are Dockerfiles on the first, whose `apt-get install`
# reaches Debian's mirror from inside the build. Each carries the label
# org.ferrite.base=true (the images built on them inherit it). Do not run
# this where Docker Hub is reachable: the official images are the real ones
# (`docker pull` puts them back).
#
# The root filesystem is cached as a tarball (under FERRITE_BASE_CACHE,
# default ~/.cache/ferrite-base), named by a hash of what goes into it, and
# Docker's build cache keeps the rest, so a run with nothing changed takes
# seconds. Prints one line per image with its size; exits non-zero if any
# build fails, with that build's output.
#
# Usage: scripts/base-images.sh [--fresh]
#   --fresh  debootstrap again instead of using the cached root filesystem
#
# Environment: FERRITE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# FERRITE_BASE_CACHE. debootstrap needs root.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBIAN=debian:bookworm-slim
# The root filesystem (lib.sh): minbase alone, the runtimes go on top.
ROOTFS_PACKAGES=()
ROOTFS_TRIM=trim_base
ROOTFS_CACHE=${FERRITE_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrite-base}
ROOTFS_FRESH=0

for arg in "$@"; do
  case $arg in
    --fresh) ROOTFS_FRESH=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (only --fresh)" >&2; exit 2 ;;
  esac
done

# The legacy builder: BuildKit needs the buildx plugin, which is not here.
export DOCKER_BUILDKIT=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Trims a debootstrapped tree as the official slim image is: no
# documentation, manual pages, translations, package lists or downloaded
# packages (and dpkg told to leave them out of later installs too), dpkg
# without a sync per file (a layer is committed whole or not at all), and
# none of the host's files debootstrap copied (Docker provides them).
# shellcheck disable=SC2317 # called through ROOTFS_TRIM (lib.sh)
trim_base() {
  local r=$1
  rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
    "$r"/usr/share/locale/* "$r"/usr/share/lintian \
    "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin \
    "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/var/log/apt/* \
    "$r"/etc/resolv.conf "$r"/etc/hostname
  cat >"$r"/etc/dpkg/dpkg.cfg.d/ferrite-slim <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
force-unsafe-io
CFG
  echo 'Binary::apt::APT::Keep-Downloaded-Packages "false";' >"$r"/etc/apt/apt.conf.d/ferrite-slim
}

# The Dockerfile of a runtime image: Debian's packages PACKAGES on the base,
# then the lines of EXTRA (its environment, as the official image has it).
dockerfile() {
  local packages=$1 extra=$2
  cat <<DOCKERFILE
FROM $DEBIAN
RUN apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends $packages >/dev/null \\
 && rm -rf /var/lib/apt/lists/*
$extra
LABEL org.ferrite.base=true
DOCKERFILE
}

# The runtimes: tag, packages, environment. The programs are on PATH as in
# the official images (there under /usr/local, here under /usr/bin), which
# is all the templates rely on.
declare -A PACKAGES=(
  [rust:1-slim-bookworm]="rustc-web cargo-web"
  [golang:1-bookworm]="golang-go ca-certificates"
  [python:3.11-slim-bookworm]="python3 python3-pip python-is-python3"
  [node:18-bookworm-slim]="nodejs"
)
declare -A EXTRA=(
  [rust:1-slim-bookworm]=$'ENV CARGO_HOME=/usr/local/cargo\nENV PATH=/usr/local/cargo/bin:$PATH'
  [golang:1-bookworm]=$'ENV GOPATH=/go\nENV PATH=/go/bin:$PATH\nWORKDIR /go'
  [python:3.11-slim-bookworm]=$'ENV LANG=C.UTF-8\nCMD ["python3"]'
  [node:18-bookworm-slim]='CMD ["node"]'
)
RUNTIMES=(rust:1-slim-bookworm golang:1-bookworm python:3.11-slim-bookworm node:18-bookworm-slim)

# Builds one runtime image; its report line goes to $logs/N.out, the output
# to $logs/N.log (shown only on failure).
build() {
  local tag=$1 n=$2 before start
  before=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
  start=$(date +%s.%N)
  if ! dockerfile "${PACKAGES[$tag]}" "${EXTRA[$tag]}" \
    | docker build --force-rm -t "$tag" - >"$logs/$n.log" 2>&1; then
    echo "FAILED    $tag" >"$logs/$n.out"
    return 1
  fi
  image_outcome "$tag" "$before" "$start" "$(image_size "$tag")" >"$logs/$n.out"
  drop_old "$tag" "$before"
}

# drop_old TAG BEFORE: removes the image TAG named before a rebuild, now
# untagged. Only that one: pruning by label would also take the build
# cache of every image built on these (they inherit the label).
drop_old() {
  local after
  after=$(docker image inspect -f '{{.Id}}' "$1")
  if [ -n "$2" ] && [ "$2" != "$after" ]; then docker rmi "$2" >/dev/null 2>&1 || true; fi
}

before=$(docker image inspect -f '{{.Id}}' "$DEBIAN" 2>/dev/null || true)
start=$(date +%s.%N)
if ! rootfs_import "$DEBIAN" "LABEL org.ferrite.base=true" \
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]' \
  >"$logs/base.log" 2>&1; then
  echo "FAILED    $DEBIAN"
  cat "$logs/base.log" >&2
  exit 1
fi
image_outcome "$DEBIAN" "$before" "$start" "$(image_size "$DEBIAN")"
debian_before=$before

# Mostly download, unpacking and committing layers: side by side.
pids=()
for i in "${!RUNTIMES[@]}"; do
  build "${RUNTIMES[$i]}" "$i" &
  pids+=("$!")
done
failed=0
for i in "${!RUNTIMES[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  cat "$logs/$i.out"
  if [ "$status" -ne 0 ]; then cat "$logs/$i.log" >&2; failed=1; fi
done
# After the runtimes: an image that others are built on cannot be removed.
drop_old "$DEBIAN" "$debian_before"
exit "$failed"
