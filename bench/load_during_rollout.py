"""Benchmark: Herd's API under steady load while a rollout runs, against the
same load with no rollout running.

N servers on test hosts (one a host by default), provisioned through Herd on
the real stack as bench/rollout_overhead.py does (API in uvicorn, `herd
worker --beat` over Redis on PostgreSQL, test hosts over SSH with the
Mastodon stand-in). Then, in the same run:

1. during: a rollout to v4.5.2 starts (one wave, concurrency --cap), and at
   once a second process on 127.0.0.1 (`python -m bench.loadgen`) holds the
   API at --rate requests a second for --seconds, with what staff and
   customers read meanwhile (servers, the rollout and its servers, audit
   logs, jobs);
2. baseline: once the rollout has completed and nothing else runs, the same
   requests (same ids, same order) at the same rate again.

It prints both runs (throughput, p50, p95, p99, errors, whether the
generator kept the rate) and the ratio of the p95s, and how much of the
loaded run the rollout was really running for.

    .venv/bin/python -m bench.load_during_rollout [--hosts 4] [--servers HOSTS]
        [--rate 20] [--seconds 60] [--cap 2] [--forks 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bench.live_herd import live_herd
from bench.loadgen import Summary, report
from bench.rollout_overhead import TARGET, provision
from controlplane.rollouts.engine import DONE
from controlplane.rollouts.models import Rollout, RolloutTarget, TargetState
from tests.e2e.stack import Stack
from tests.factories import World
from tests.hosts.harness import TestFleet
from tests.processes import api_process

ROOT = Path(__file__).resolve().parents[1]


def load(api: str, world: World, rate: float, seconds: float) -> Summary:
    """One run of the load generator as a process of its own."""
    command = [
        sys.executable, "-m", "bench.loadgen", "--url", api,
        "--token", world.tokens["operator"], "--customer-token", world.tokens["owner"],
        "--rate", str(rate), "--seconds", str(seconds), "--json",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the load generator failed (rc {done.returncode}):\n{done.stderr}")
    return Summary(**json.loads(done.stdout.strip().splitlines()[-1]))


def rollout_progress(engine: Engine, rollout_id: str) -> tuple[str, int, int]:
    """(state, servers finished, servers running), read from the database so
    that watching it adds nothing to the API's load."""
    with Session(engine) as session:
        rollout = session.get(Rollout, uuid.UUID(rollout_id))
        assert rollout is not None
        counts = dict(
            session.exec(
                select(RolloutTarget.state, func.count())
                .where(RolloutTarget.rollout_id == rollout.id)
                .group_by(col(RolloutTarget.state))
            ).all()
        )
    finished = sum(counts.get(s, 0) for s in DONE)
    return rollout.state.value, finished, counts.get(TargetState.running, 0)


def wait_for_rollout(engine: Engine, rollout_id: str, timeout: float) -> float:
    """Seconds until the rollout completes; fails on any other end."""
    started = time.monotonic()
    while True:
        state, _, _ = rollout_progress(engine, rollout_id)
        if state == "completed":
            return time.monotonic() - started
        if state not in ("running", "planned"):
            raise SystemExit(f"the rollout ended {state}")
        if time.monotonic() - started > timeout:
            raise SystemExit(f"the rollout did not complete in {timeout:.0f} s")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4, help="test hosts")
    parser.add_argument("--servers", type=int, default=None, help="servers (one a host)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load, each run")
    parser.add_argument("--cap", type=int, default=2, help="rollout concurrency")
    parser.add_argument("--forks", type=int, default=2, help="worker concurrency")
    parser.add_argument(
        "--reconcile-seconds",
        type=float,
        default=2.0,
        help="HERD_RECONCILE_SECONDS: how often the rollout engine ticks (production 30)",
    )
    args = parser.parse_args()
    count = args.servers or args.hosts
    slots = max(2, -(-count // args.hosts))
    began = time.monotonic()
    print(
        f"load during a rollout: {count} servers on {args.hosts} test hosts, rollout "
        f"concurrency {args.cap}, worker concurrency {args.forks}; load {args.rate:g} req/s "
        f"for {args.seconds:g} s a run from a second process; PostgreSQL + Redis, stand-in "
        f"Mastodon; {platform.node()}, {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )

    with live_herd(HERD_RECONCILE_SECONDS=str(args.reconcile_seconds)) as herd:
        names = [f"h{n:02d}" for n in range(1, args.hosts + 1)]
        fleet = TestFleet(herd.root / "fleet", names, shared_paths=[herd.repo.path], slots=slots)
        stack: Stack | None = None
        try:
            fleet.start()
            with api_process() as api:
                stack = Stack(api=api, world=herd.world, fleet=fleet, logs=herd.root)
                stack.register_hosts()
                stack.start_worker(concurrency=args.forks).wait_ready()
                started = time.monotonic()
                provision(stack, count, timeout=300 + 120 * count / args.forks)
                print(f"set-up: {count} servers provisioned in {time.monotonic() - started:.0f} s")
                stack.ok("operator", "POST", "/releases", json={"tag": TARGET, "security": True})
                spec: dict[str, Any] = {
                    "target": TARGET,
                    "selector": {"all": True},
                    "waves": ["100%"],
                    "concurrency": args.cap,
                    "failure_budget": 0,
                }
                rollout_id = stack.ok("operator", "POST", "/rollouts", json=spec)["id"]
                rollout_began = time.monotonic()
                during = load(api, herd.world, args.rate, args.seconds)
                state, finished, running = rollout_progress(herd.engine, rollout_id)
                loaded_for = time.monotonic() - rollout_began
                rest = wait_for_rollout(herd.engine, rollout_id, timeout=600 + 120 * count)
                print(
                    f"rollout: {TARGET} on {count} servers completed in {loaded_for + rest:.0f} s; "
                    f"when the load ended ({loaded_for:.0f} s in) it was {state} with {finished} "
                    f"server(s) done and {running} upgrading",
                    flush=True,
                )
                if state != "running":
                    print("WARNING: the rollout ended before the load did; raise --servers")
                baseline = load(api, herd.world, args.rate, args.seconds)
        finally:
            if stack is not None:
                stack.stop()
            fleet.stop()

    print()
    print(report(during, "during the rollout"))
    print(report(baseline, "baseline (no rollout)"))
    ratio = during.p95_ms / baseline.p95_ms if baseline.p95_ms else float("inf")
    print()
    print(
        f"p95 during / baseline: {ratio:.2f} ({during.p95_ms:.1f} ms / {baseline.p95_ms:.1f} ms); "
        f"errors {during.errors} during, {baseline.errors} baseline"
    )
    print(f"benchmark run time {time.monotonic() - began:.0f} s (set-up included)")
    if not (during.kept_rate and baseline.kept_rate):
        print("WARNING: the generator fell behind its schedule (see the send lag above)")
    if during.errors or baseline.errors:
        raise SystemExit("the API answered with errors under load: see above")


if __name__ == "__main__":
    main()
