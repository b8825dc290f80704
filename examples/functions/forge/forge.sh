#!/bin/sh
# forge: a hostile function. It fails (exit 1), but first tries to make
# Ferrite report a success: it writes a forged exit frame (docs/init-protocol.md:
# 'X', length 5, kind 0 "exited", code 0) into the init's stdout, which
# carries the frames the host trusts, through /proc/1/fd/1. It also tries to
# read the init's environment and memory. Each attempt is reported on stderr,
# so the call's log shows what was refused.
attempt() {
  if "$@" 2>/dev/null; then
    echo "forge: $1 $2: done" >&2
  else
    echo "forge: $1 $2: refused" >&2
  fi
}
forge() { printf 'X\000\000\000\005\000\000\000\000\000' >"$1"; }
attempt forge /proc/1/fd/1
attempt cat /proc/1/environ >/dev/null
attempt cat /proc/1/mem >/dev/null
echo "forge: my stdout, as any function's"
exit 1
