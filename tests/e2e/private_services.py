"""A PostgreSQL cluster and a Redis server of a test's own, on free ports,
so a fault test can restart them without disturbing anything else on the
machine (the tenant databases the playbooks make stay on the machine's
PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from controlplane.db import dispose_engines
from tests.moto import free_port


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return found[-1]


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.bin = folder, free_port(), _pg_bin()
        self.data = folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *command: str | Path) -> None:
        argv = [str(c) for c in command]
        if os.geteuid() == 0:
            # initdb refuses to run as root.
            shutil.chown(self.folder, "postgres")
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def init(self) -> PrivatePostgres:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._as_postgres(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        return self.start()

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            self.bin / "pg_ctl", "-D", self.data, "-l", self.folder / "log", "-w", "start",
            "-o", options,
        )  # fmt: skip
        return self

    def stop(self) -> None:
        # Immediate: every connection is cut, as when the server crashes.
        self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")

    def answers(self) -> bool:
        try:
            psycopg.connect(
                f"host=127.0.0.1 port={self.port} user=postgres", connect_timeout=2
            ).close()
        except psycopg.OperationalError:
            return False
        return True


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=1).ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGKILL: whatever the broker held in memory is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def running_postgres() -> Iterator[PrivatePostgres]:
    """A cluster started for the `with` block; stopped (if a test left it
    running) and removed after, with Herd's engines on it."""
    # Under /tmp itself: the postgres user must reach it.
    folder = Path(tempfile.mkdtemp(prefix="herd-pg-"))
    cluster = PrivatePostgres(folder).init()
    try:
        yield cluster
    finally:
        dispose_engines()
        if cluster.answers():
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def running_redis() -> Iterator[PrivateRedis]:
    """A Redis started for the `with` block, killed and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="herd-redis-"))
    server = PrivateRedis(folder).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
