"""A hot function (format: http).

Ferrite starts this program once and keeps its container up; each call
arrives on stdin as an HTTP/1.1 request, and the answer goes to stdout as an
HTTP/1.1 response, one call at a time. stderr is the log. End of input means
the container is being stopped: the program exits. The app's and route's
config keys are environment variables, fixed when the container starts;
per-call facts come as request headers (Fn-Call-Id, ...).
"""

import http.server
import json
import os
import sys

GREETING = os.environ.get("GREETING") or "Hello"


def name_in(body):
    """Reads {"name": "Ada"}; a missing, empty or unreadable name greets the World."""
    try:
        name = json.loads(body).get("name")
    except (ValueError, AttributeError):
        return "World"
    return name if isinstance(name, str) and name else "World"


class Handler(http.server.BaseHTTPRequestHandler):
    """The standard library's HTTP/1.1 request handling, on stdin and stdout
    instead of a socket: it parses each request (headers in any case) and
    keeps reading requests until the end of input."""

    protocol_version = "HTTP/1.1"

    def __init__(self):  # pylint: disable=super-init-not-called
        # No socket and no server: only the streams the handler reads and
        # writes, and an address for its messages.
        self.rfile = sys.stdin.buffer
        self.wfile = sys.stdout.buffer
        self.client_address = ("ferrite", 0)

    def call(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Content-Length is not a number")
            return
        name = name_in(self.rfile.read(length))
        print("greeting", name, file=sys.stderr, flush=True)
        answer = f"{GREETING}, {name}!\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        # handle_one_request flushes stdout after each call.

    # Every method is a call of the function.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = call

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the handler's access lines would repeat what Ferrite logs."""


if __name__ == "__main__":
    # Serves request after request; returns at the end of input.
    Handler().handle()
