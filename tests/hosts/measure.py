"""Print how long test hosts take to start and stop.

    python -m tests.hosts.measure [ROUNDS]

Runs from the repository root as root; uses a temporary folder.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from .harness import TestFleet
from .sshd import read_banner


def measure(size: int, root: Path) -> tuple[float, list[float], float]:
    """(fleet start wall time, per-host start times, fleet stop wall time)."""
    names = [f"h{i}" for i in range(1, size + 1)]
    fleet = TestFleet(root, names)
    started = time.monotonic()
    fleet.start()
    wall = time.monotonic() - started
    assert all(read_banner(host.ssh_port, 1.0) for host in fleet)
    per_host = [host.startup_seconds or 0.0 for host in fleet]
    started = time.monotonic()
    fleet.stop()
    return wall, per_host, time.monotonic() - started


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{'hosts':>5} {'start (wall)':>13} {'per host median':>16} {'max':>6} {'stop':>6}")
    with tempfile.TemporaryDirectory(prefix="herd-hosts-") as folder:
        for size in (1, 2, 4, 8):
            results = [measure(size, Path(folder) / f"{size}-{r}") for r in range(rounds)]
            walls = [r[0] for r in results]
            hosts = [t for r in results for t in r[1]]
            stops = [r[2] for r in results]
            print(
                f"{size:>5} {statistics.median(walls):>12.3f}s {statistics.median(hosts):>15.3f}s"
                f" {max(hosts):>5.2f}s {statistics.median(stops):>5.2f}s"
            )


if __name__ == "__main__":
    main()
