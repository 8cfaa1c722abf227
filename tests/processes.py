"""Herd's own processes for tests and benchmarks that need real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

UVICORN = ("--host", "127.0.0.1", "--log-level", "warning")


@contextmanager
def api_process(env: dict[str, str] | None = None) -> Iterator[str]:
    """The API in a uvicorn process on a free loopback port, configured by
    ``env`` (this process's environment by default); yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "controlplane.app:create_app",
            "--factory",
            *UVICORN,
            "--port",
            str(port),
        ],
        env=os.environ.copy() if env is None else env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                if httpx.get(f"{base}/healthz/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
