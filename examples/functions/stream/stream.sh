#!/bin/sh
# stream: prints $BYTES bytes (route config bytes; default 7 MiB) of
# printable text, 64-byte lines, for response-size-cap tests.
bytes=${BYTES:-7340032}
echo "stream: writing $bytes bytes" >&2
yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ- | head -c "$bytes"
