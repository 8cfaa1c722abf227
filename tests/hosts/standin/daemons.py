"""Stand-ins for Mastodon's streaming server and Sidekiq, run by the fake systemctl."""

from __future__ import annotations

import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StreamingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        found = self.path.rstrip("/") in ("/api/v1/streaming/health", "/api/v1/streaming")
        body = b"OK" if found else b"Not Found"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{format % args}\n")


def streaming(_argv: list[str]) -> int:
    """node ./streaming: answers its health check on BIND:PORT (default 4000)."""
    bind = os.environ.get("BIND") or "127.0.0.1"
    port = int(os.environ.get("PORT") or 4000)
    server = ThreadingHTTPServer((bind, port), StreamingHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"streaming: listening on {bind}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


def worker(_argv: list[str]) -> int:
    """Sidekiq: idles until stopped."""
    print("sidekiq: waiting for jobs", file=sys.stderr, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    return 0
