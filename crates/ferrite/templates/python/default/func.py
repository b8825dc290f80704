"""A cold function (format: default).

Ferrite runs this program once per call, in a fresh container. The request
body is stdin, stdout is the answer, stderr is the call's log, and the exit
status is the outcome. Per-call facts (METHOD, REQUEST_URL, HEADER_*, ...)
and the app's and route's config keys are environment variables.
"""

import json
import os
import sys


def name_in(body):
    """Reads {"name": "Ada"}; a missing, empty or unreadable name greets the World."""
    try:
        name = json.loads(body).get("name")
    except (ValueError, AttributeError):
        return "World"
    return name if isinstance(name, str) and name else "World"


def main():
    name = name_in(sys.stdin.buffer.read())
    # A config key (ferrite apps config set APP GREETING Hi) arrives as an
    # environment variable.
    greeting = os.environ.get("GREETING") or "Hello"
    print("greeting", name, file=sys.stderr)
    print(f"{greeting}, {name}!")


if __name__ == "__main__":
    main()
