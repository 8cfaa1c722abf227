"""Benchmark: planning a rollout of 10,000 servers in 50 time zones, with
assorted weekly windows (none, one or two per organisation, some across
midnight), into waves [1, "5%", "25%", "100%"] under a concurrency cap and a
soak time. Pure planning (controlplane/rollouts/planning.py): no database.

    .venv/bin/python -m bench.rollout_planning [--servers 10000] [--repeat 5]

Prints the best and median time; the aim is under 1 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import available_timezones

from controlplane.rollouts import planning
from controlplane.rollouts.planning import Candidate, Timing, plan_rollout
from controlplane.rollouts.windows import WeeklyWindow


def fleet(servers: int, seed: int = 4) -> list[Candidate]:
    rng = random.Random(seed)
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc"))
    zones = rng.sample(zones, 50)
    organisations = []
    for _ in range(max(1, servers // 5)):
        windows: tuple[WeeklyWindow, ...] = tuple(
            WeeklyWindow(
                rng.randint(1, 7), rng.randrange(0, 24 * 60, 15), rng.choice([60, 120, 240])
            )
            for _ in range(rng.choice([0, 1, 1, 2]))
        )
        organisations.append((uuid.uuid4(), rng.choice(zones), windows))
    out = []
    for i in range(servers):
        org, zone, windows = organisations[i % len(organisations)]
        version = rng.choice(["4.5.1", "4.5.1", "4.5.0", "4.4.8", "4.5.2"])
        out.append(Candidate(uuid.uuid4(), org, f"s{i}.bench.social", version, zone, windows))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    candidates = fleet(args.servers)
    now = datetime(2026, 3, 28, 22, tzinfo=UTC)  # the night Europe springs forward
    timing = Timing(concurrency=50, soak=timedelta(minutes=30))
    times = []
    for _ in range(args.repeat):
        planning._earliest.cache_clear()  # every run from cold
        started = time.perf_counter()
        plan = plan_rollout(candidates, "v4.5.2", [1, "5%", "25%", "100%"], "2%", now, timing)
        times.append(time.perf_counter() - started)
    print(
        f"planned {len(candidates)} servers: {plan.to_upgrade} to upgrade in "
        f"{len(plan.waves)} waves {[w.size for w in plan.waves]}, "
        f"{len(candidates) - plan.to_upgrade} skipped, budget {plan.failure_budget}"
    )
    print(f"last wave ends (estimate): {plan.waves[-1].ends_at.isoformat()}")
    print(f"planning time: best {min(times):.3f} s, median {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
