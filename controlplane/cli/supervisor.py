"""Keeping `herd serve`'s worker running.

On one machine nothing else restarts the worker beside the API, and a Celery
worker does exit by itself: when its broker dies while it holds an
unacknowledged task, kombu's Redis transport fails restoring it and the
process ends. Started again, the worker takes its work up from the database.
So `herd serve` restarts it, as systemd's `Restart=always` does for a
`herd worker` of its own (deploy/systemd/).

The child runs in a process group of its own, and when it ends, whatever is
left in that group ends too: a worker killed outright (SIGKILL, the OOM
killer) leaves its embedded beat process behind, and a second beat beside
the restarted worker's would tick the reconciler twice. (systemd does the
same with the unit's cgroup.)

A child that keeps failing is restarted with a growing pause (1 s doubling to
30 s), back to 1 s once a run has lasted a minute, so a worker that cannot
reach its broker does not spin.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)
FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0
SETTLED_AFTER_SECONDS = 60.0


class Supervisor:
    """Runs `command`, and again each time it exits, until `stop()`."""

    def __init__(self, command: Sequence[str], *, name: str = "worker") -> None:
        self.command = list(command)
        self.name = name
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._keep_running, name=f"supervise-{name}")

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        # Under the lock, so stop() either sees this child and ends it or has
        # already said stop and no child starts.
        with self._lock:
            if self._stopping.is_set():
                return None
            # The command is the caller's own (serve's worker), never input.
            self._process = subprocess.Popen(  # noqa: S603
                self.command, start_new_session=True
            )
            return self._process

    def _keep_running(self) -> None:
        pause = FIRST_PAUSE_SECONDS
        while True:
            process = self._spawn()
            if process is None:
                return
            began = time.monotonic()
            returncode = process.wait()
            _signal_group(process.pid, signal.SIGKILL)
            if self._stopping.is_set():
                return
            if time.monotonic() - began >= SETTLED_AFTER_SECONDS:
                pause = FIRST_PAUSE_SECONDS
            log.warning(
                "the %s exited (status %s); starting it again in %.0f s",
                self.name,
                returncode,
                pause,
            )
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop restarting, end the child (SIGTERM: Celery's warm shutdown,
        then SIGKILL after `timeout`) and wait for it."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            _signal_group(process.pid, signal.SIGKILL)
        if self._thread.is_alive():
            self._thread.join()


def _signal_group(group: int, signum: signal.Signals) -> None:
    # Gone already is fine: nothing was left.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
