"""Where a benchmark phase spends the machine's CPU.

On a machine of two cores that runs the control plane, the Ansible
controller and the test hosts together, a phase's wall time follows the CPU
everything spends in it, so a ratio of wall times is explained by a ratio of
CPU seconds. `CpuMeter` reads the machine's busy time (/proc/stat) at the
start and end of a phase, and samples every process's own CPU time once a
second in between, so short-lived processes (Ansible's forks, the modules
run on the hosts) are mostly caught before they exit. What the samples miss
is reported as "unsampled".
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

# The first pattern found in a process's command line names its group.
GROUPS = (
    ("-m bench.", "benchmark"),
    ("uvicorn", "Herd API"),
    ("controlplane.cli.main worker", "Herd worker"),
    ("ansible", "Ansible controller"),
    ("sshd", "sshd (hosts)"),
    ("ssh", "ssh (controller)"),
    ("postgres", "PostgreSQL"),
    ("redis", "Redis"),
    ("beam.smp", "RabbitMQ (idle)"),
    ("python3", "modules on the hosts"),
)


def _machine_busy() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def _processes() -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, start tick) → (group, CPU seconds so far) for every process."""
    seen: dict[tuple[int, int], tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            command = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # exited while we looked
        fields = stat.rsplit(")", 1)[1].split()
        # Fields after the command name start at field 3 of man 5 proc:
        # utime and stime are fields 14 and 15, starttime 22.
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        name = command or stat.split("(", 1)[1].split(")", 1)[0]
        group = next((label for pattern, label in GROUPS if pattern in name), "other")
        seen[(int(entry.name), int(fields[19]))] = (group, cpu)
    return seen


class CpuMeter:
    """CPU seconds by group over one phase: `with CpuMeter() as meter: ...`."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.groups: Counter[str] = Counter()
        self.busy = 0.0
        self.wall = 0.0
        self._start: dict[tuple[int, int], tuple[str, float]] = {}
        self._last: dict[tuple[int, int], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuMeter:
        self._start = _processes()
        self._last = dict(self._start)
        self._busy0, self._wall0 = _machine_busy(), time.monotonic()
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._last.update(_processes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._last.update(_processes())
        self.busy = _machine_busy() - self._busy0
        self.wall = time.monotonic() - self._wall0
        for key, (group, cpu) in self._last.items():
            before = self._start.get(key, (group, 0.0))[1]
            self.groups[group] += cpu - before
        self.groups["unsampled (exited between samples), kernel"] = self.busy - sum(
            self.groups.values()
        )

    def report(self, title: str) -> str:
        lines = [
            f"{title}: {self.busy:.1f} CPU-s busy in {self.wall:.1f} s wall "
            f"({self.busy / self.wall:.2f} cores of {os.cpu_count()})"
        ]
        for group, seconds in self.groups.most_common():
            if abs(seconds) >= 0.05:
                lines.append(f"    {group:<44} {seconds:8.1f} CPU-s")
        return "\n".join(lines)
