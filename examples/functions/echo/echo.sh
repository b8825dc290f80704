#!/bin/sh
# echo: a dump for contract tests. stdout is the sorted environment, then the
# line "--- stdin ---", then the body verbatim (byte for byte, no newline
# added). stderr gets one line, "echo: N bytes", the size of the body.
#
# The body is never held in a shell variable (that would drop NULs and
# trailing newlines) nor written to a file (the root filesystem may be
# read-only): tee copies it to the real stdout, reopened as /dev/fd/3 (-a:
# no truncation when that is a file), while wc counts it.
if (: >>/dev/fd/1) 2>/dev/null; then
  reopen=yes
else
  reopen=no  # stdout is a socket, which cannot be reopened
fi
env | sort
echo '--- stdin ---'
if [ $reopen = yes ]; then
  { n=$(tee -a /dev/fd/3 | wc -c); } 3>&1
else
  # dd with 1-byte blocks: its record count is the byte count (slow, exact).
  { n=$(dd bs=1 2>&1 >&3 | sed -n 's/^\([0-9]*\)+[0-9]* records out$/\1/p'); } 3>&1
fi
echo "echo: $n bytes" >&2
