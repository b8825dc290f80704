#!/usr/bin/env python3
"""Print a management token for Prometheus to scrape Ferrite's /metrics with.

/metrics is guarded as /v1 is: with a key (JWT_AUTH_KEY_FILE), every scrape
needs `Authorization: Bearer <token>`, an HS256 JWT signed with that key. The
CLI signs five-minute tokens for itself; a scraper needs one that lasts, kept in
a file that Prometheus reads on every scrape (`credentials_file`), so that a
new token is picked up without a restart.

    deploy/prometheus/token.py ferrite-jwt.key > ferrite-metrics.token
    deploy/prometheus/token.py ferrite-jwt.key --days 30 > ferrite-metrics.token

The key is read from its file as the server reads it (less one trailing
newline) and never passed on a command line.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time

MAX_DAYS = 3650


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("key_file", help="the nodes' key file (JWT_AUTH_KEY_FILE)")
    parser.add_argument("--days", type=int, default=365,
                        help=f"how long the token is valid, 1 to {MAX_DAYS} days (default 365)")
    args = parser.parse_args()
    if not 1 <= args.days <= MAX_DAYS:
        parser.error(f"--days must be from 1 to {MAX_DAYS}")
    try:
        with open(args.key_file, "rb") as f:
            key = f.read(64 * 1024 + 1)
    except OSError as e:
        print(f"token.py: cannot read the key: {e}", file=sys.stderr)
        return 1
    if key.endswith(b"\n"):
        key = key[:-1]
        if key.endswith(b"\r"):
            key = key[:-1]
    if not key or len(key) > 64 * 1024:
        print("token.py: the key file is empty or larger than 64 KiB", file=sys.stderr)
        return 1
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": "prometheus", "iat": now,
                                "exp": now + args.days * 86400}).encode())
    signature = b64url(hmac.new(key, f"{header}.{claims}".encode(), hashlib.sha256).digest())
    print(f"{header}.{claims}.{signature}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
