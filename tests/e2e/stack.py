"""The whole of Herd as it runs in production, on this machine: the API in a
real uvicorn process, Celery workers as real processes over a real broker,
and test hosts reached over SSH (tests/hosts). Only the customer and the
staff member are this test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.factories import World
from tests.hosts.harness import TestFleet


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``. ansible-runner starts ansible-playbook on a
    pseudo-terminal in a session of its own, so killing the worker's process
    group would leave it running; a machine that dies takes them all."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


class Worker:
    """`herd worker --beat` as its own process, its output in a log file;
    with a crash file, the worker of tests/e2e/crashing_worker.py."""

    def __init__(
        self, log: Path, crash_file: Path | None = None, concurrency: int = 1, beat: bool = True
    ) -> None:
        self.log, self.concurrency, self.beat = log, concurrency, beat
        self.process: subprocess.Popen[bytes] | None = None
        self.program = (
            ["-m", "controlplane.cli.main"]
            if crash_file is None
            else ["-m", "tests.e2e.crashing_worker", str(crash_file)]
        )

    def start(self) -> Worker:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    *self.program,
                    "worker",
                    *(["--beat"] if self.beat else []),
                    f"--concurrency={self.concurrency}",
                ],
                env=os.environ.copy(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the worker and everything it started, all at once."""
        assert self.process is not None
        victims = [self.process.pid, *descendants(self.process.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait_ready(self, timeout: float = 60.0) -> Worker:
        """Until Celery says the worker consumes (it logs "ready.")."""
        deadline = time.monotonic() + timeout
        while " ready." not in self.log.read_text(errors="replace"):
            assert not self.dead, self.log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        return self

    @property
    def dead(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Stack:
    api: str
    world: World
    fleet: TestFleet
    logs: Path
    workers: list[Worker] = field(default_factory=list)
    # One client for every call: a new client per call builds a TLS context
    # each time, which costs more CPU than the call (benchmarks poll often).
    client: httpx.Client = field(default_factory=httpx.Client)

    def call(self, principal: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(
            method, f"{self.api}/api/v1{path}", headers=self.world.headers(principal), **kwargs
        )

    def ok(self, principal: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(principal, method, path, **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content else None

    def start_worker(
        self, crash_file: Path | None = None, concurrency: int = 1, beat: bool = True
    ) -> Worker:
        """Without beat, the worker runs jobs but no periodic task: the test
        plays the beat's part (for instance with an injected clock)."""
        log = self.logs / f"worker-{len(self.workers)}.log"
        worker = Worker(log, crash_file, concurrency, beat).start()
        self.workers.append(worker)
        return worker

    def register_hosts(self) -> list[str]:
        ids = []
        for host in self.fleet:
            registration = host.registration()
            registration["capacity"] = registration.pop("slots")
            ids.append(self.ok("operator", "POST", "/hosts", json=registration)["id"])
        return ids

    def order(self, domain: str, **fields: Any) -> str:
        org = self.world.ids["org_a"]
        body = {"domain": domain, "plan": "small", "title": f"Social {domain}", **fields}
        server = self.ok("owner", "POST", f"/organisations/{org}/servers", json=body)
        return server["id"]

    def approve(self, server_id: str) -> None:
        self.ok("operator", "POST", f"/servers/{server_id}/approve", json={})

    def server(self, server_id: str) -> dict[str, Any]:
        return self.ok("owner", "GET", f"/servers/{server_id}")

    def jobs(self, server_id: str) -> list[dict[str, Any]]:
        return self.ok("operator", "GET", f"/servers/{server_id}/jobs")["items"]

    def wait_for_state(self, server_id: str, state: str, timeout: float = 300.0) -> dict:
        return self.wait_until(lambda: self._in_state(server_id, state), timeout)

    def _in_state(self, server_id: str, state: str) -> dict[str, Any] | None:
        server = self.server(server_id)
        if server["state"] == state:
            return server
        if server["state"] == "failed" and state != "failed":
            raise AssertionError(f"server failed: {server}, jobs: {self.jobs(server_id)}")
        return None

    def wait_until(self, condition: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out after {timeout:.0f} s; worker logs:\n{self.tail()}")

    def tail(self, characters: int = 4000) -> str:
        text = "".join(w.log.read_text(errors="replace") for w in self.workers if w.log.exists())
        return text[-characters:]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        # Its pooled sockets closed now, not at garbage collection, where an
        # unclosed socket's ResourceWarning fails whichever test runs then.
        self.client.close()
