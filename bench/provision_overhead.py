"""Benchmark: the control plane's own cost per provisioned server.

From the staff member's approve call to the server's `provisioned` event,
minus the time spent inside ansible-playbook (the provision and brand runs,
as each step measures them) and minus the time a job waited in the queue for
a free worker: what is left is Herd's own work (dispatch, the steps that do
not run Ansible, checkpoints, event storage, the health gate's round trips).
Printed for 1 server and for 10 ordered at once; the ratio to the time inside
ansible-playbook in the same run is the figure to compare across machines.

Runs the real stack as tests/e2e does (API in uvicorn, `herd worker` over
Redis on PostgreSQL, a test host over SSH with the Mastodon stand-in), so it
needs root and the test-host packages (scripts/test installs them).

    .venv/bin/python -m bench.provision_overhead [--counts 1,1,10] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bench.live_herd import live_herd
from tests.e2e.conftest import VERSION
from tests.e2e.stack import Stack
from tests.hosts.harness import TestFleet
from tests.processes import api_process

PLAYBOOK_STEPS = ("run_provision", "run_brand")


def _at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def measure(
    stack: Stack, count: int, domain_prefix: str, concurrency: int
) -> list[dict[str, float]]:
    ids = [stack.order(f"{domain_prefix}{n}.bench-herd.social") for n in range(count)]
    approved: dict[str, float] = {}

    def approve(server_id: str) -> None:
        approved[server_id] = time.time()
        stack.approve(server_id)

    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(approve, ids))
    for server_id in ids:
        stack.wait_for_state(server_id, "active", timeout=120 + 90 * count)

    jobs = {}
    for server_id in ids:
        (job,) = stack.jobs(server_id)
        jobs[server_id] = stack.ok("operator", "GET", f"/jobs/{job['id']}")
    spans = [(_at(j["started_at"]), _at(j["finished_at"])) for j in jobs.values()]
    rows = []
    for server_id in ids:
        events = stack.ok("operator", "GET", f"/servers/{server_id}/events")["items"]
        active_at = max(_at(e["at"]) for e in events if e["event"] == "provisioned")
        detail = jobs[server_id]
        steps = {s["name"]: s for s in detail["steps"]}
        ansible = sum(float(steps[name]["result"]["seconds"]) for name in PLAYBOOK_STEPS)
        health = _at(steps["health_gate"]["finished_at"]) - _at(steps["health_gate"]["started_at"])
        # Waiting for a free worker is capacity, not cost; it is left out only
        # when every worker was busy as the job came, so dispatch stays counted.
        created, started = _at(detail["created_at"]), _at(detail["started_at"])
        busy = sum(1 for begin, end in spans if begin <= created < end)
        queued = started - created if busy >= concurrency else 0.0
        wall = active_at - approved[server_id]
        ordered = sorted(detail["steps"], key=lambda s: s["position"])
        step_walls = {s["name"]: _at(s["finished_at"]) - _at(s["started_at"]) for s in ordered}
        rows.append(
            {
                "dispatch": started - approved[server_id] - queued,
                "other_steps": sum(w for n, w in step_walls.items() if n not in PLAYBOOK_STEPS),
                "runner": sum(step_walls[n] for n in PLAYBOOK_STEPS) - ansible,
                "between_steps": _at(ordered[-1]["finished_at"])
                - _at(ordered[0]["started_at"])
                - sum(step_walls.values()),
                "wall": wall,
                "ansible": ansible,
                "queued": queued,
                "health_gate": health,
                "overhead": wall - ansible - queued,
            }
        )
    return rows


def report(count: int, rows: list[dict[str, float]], batch_seconds: float) -> None:
    overhead = [r["overhead"] for r in rows]
    ansible = [r["ansible"] for r in rows]
    mean_overhead, mean_ansible = statistics.fmean(overhead), statistics.fmean(ansible)
    health = statistics.fmean(r["health_gate"] for r in rows)
    print(
        f"{count:>3} server(s)  batch {batch_seconds:6.1f} s  "
        f"per server: overhead mean {mean_overhead:5.2f} s  p50 {statistics.median(overhead):5.2f}"
        f"  max {max(overhead):5.2f}  | inside ansible-playbook {mean_ansible:5.1f} s"
        f"  | overhead/ansible {mean_overhead / mean_ansible:5.3f}"
        f"  | of the overhead, health gate {health:4.2f} s"
        f"  | queued mean {statistics.fmean(r['queued'] for r in rows):5.1f} s"
    )
    parts = ("dispatch", "other_steps", "runner", "between_steps")
    print(
        "      overhead by part (mean s): "
        + ", ".join(f"{part} {statistics.fmean(r[part] for r in rows):.2f}" for part in parts)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The first round runs on a fresh API process and worker (their first
    # broker connections); the next rounds are what a running Herd sees.
    parser.add_argument("--counts", default="1,1,10")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]

    with live_herd() as herd:
        slots = sum(counts)
        fleet = TestFleet(herd.root / "fleet", ["h1"], shared_paths=[herd.repo.path], slots=slots)
        stack: Stack | None = None
        try:
            fleet.start()
            with api_process() as api:
                stack = Stack(api=api, world=herd.world, fleet=fleet, logs=herd.root)
                stack.register_hosts()
                stack.start_worker(concurrency=args.concurrency).wait_ready()
                print(
                    f"provision overhead, PostgreSQL + Redis, worker concurrency "
                    f"{args.concurrency}, one test host, stand-in Mastodon {VERSION}"
                )
                for round_number, count in enumerate(counts):
                    started = time.monotonic()
                    rows = measure(stack, count, f"b{round_number}-", args.concurrency)
                    print("first round, fresh processes:" if round_number == 0 else "warm:")
                    report(count, rows, time.monotonic() - started)
        finally:
            if stack is not None:
                stack.stop()
            fleet.stop()


if __name__ == "__main__":
    main()
