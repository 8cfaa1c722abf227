"""Benchmark: a rollout's orchestration overhead against plain ansible-playbook.

N servers on test hosts (one a host by default; `--servers` with fewer hosts
puts several on each, in the hosts' slots), provisioned through Herd itself
(worker concurrency = forks), so Herd's records, secrets and the hosts agree.
Then, in the same run, the same upgrade (v4.5.1 → v4.5.2, playbooks/upgrade.yml),
through Herd and plain:

1. through Herd: a rollout with one wave of 100 %, concurrency cap = forks,
   `herd worker` concurrency = forks; timed from the POST /rollouts call until
   the rollout reads `completed` (every server upgraded and health-gated).
   The servers a rollout tick starts together share one Ansible run
   (provisioning/steps/shared_run.py), each keeping its own job;
2. reset: one plain `ansible-playbook rollback.yml` back to v4.5.1 (not timed);
3. plain: one `ansible-playbook upgrade.yml -f FORKS` over the same inventory,
   every host with the variables Herd passes it (server_variables with Herd's
   stored secrets, as host variables), the same skip tags and Ansible
   environment, and `mastodon_upgrade_serial` = N (the playbook's default of 1
   would upgrade one host at a time and flatter Herd), with the play's
   default strategy (linear), as Herd runs it; `--plain-strategies
   linear,free` adds a run with `free` after another reset.

The rollout goes first, so the plain run gets whatever a second upgrade on a
host saves: the ratio errs against Herd. Both runs are checked to do the same
work (the stand-in's command log per host) and to leave every host on 4.5.2.

Runs the real stack as tests/e2e does (API in uvicorn, `herd worker --beat`
over Redis on PostgreSQL, test hosts over SSH with the Mastodon stand-in);
needs root and the test-host packages (scripts/test installs them).

    .venv/bin/python -m bench.rollout_overhead [--hosts 8] [--servers HOSTS]
        [--slots N/HOSTS] [--forks 4] [--reconcile-seconds 2] [--cap FORKS]
        [--plain-strategies linear]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bench.cpu import CpuMeter
from bench.live_herd import live_herd
from controlplane.fleet.models import Host
from controlplane.jobs.models import Job, JobEvent, JobStep
from controlplane.rollouts.models import RolloutTarget
from controlplane.servers import secrets as server_secrets
from controlplane.servers.models import Server
from controlplane.servers.upgrades import SHARED_RUN_PARAM
from provisioning.ansible import PLAYBOOKS
from provisioning.hosts import inventory_for
from provisioning.variables import deployment_variables
from tests.e2e.conftest import SKIP_TAGS, VERSION
from tests.e2e.stack import Stack
from tests.hosts import webcheck
from tests.hosts.harness import TestFleet
from tests.processes import api_process

TARGET = "v4.5.2"


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return (end - start).total_seconds() if start and end else 0.0


# -- the plain run ------------------------------------------------------------------


def plain_inventory(engine: Engine, run_dir: Path, version: str) -> dict[str, Any]:
    """Every server's host with what Herd would pass its playbook (as host
    variables: each server has its own) and Herd's connection settings."""
    with Session(engine) as session:
        servers = session.exec(select(Server).where(col(Server.host_id).is_not(None))).all()
        hosts, per_host = [], {}
        servers = list(servers)
        for server in servers:
            host = session.get(Host, server.host_id)
            assert host is not None
            secrets = server_secrets.ensure(session, server.id)
            per_host[server.id] = deployment_variables(session, server, host, secrets, version)
            hosts.append(host)
    keys = run_dir / "keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    entries = {}
    # One inventory entry per server (an alias for its host): under parallel
    # approvals Herd may place two servers on one host (see the output).
    for server, host in zip(servers, hosts, strict=True):
        inventory = inventory_for([host], {host.name: per_host[server.id]})
        entry = dict(inventory.hosts[host.name])
        if host.name in inventory.ssh_keys:
            key = keys / f"{host.name}.key"
            key.write_text(inventory.ssh_keys[host.name].rstrip("\n") + "\n")
            key.chmod(0o600)
            entry["ansible_ssh_private_key_file"] = str(key)
        entries[f"{host.name}-slot{server.slot}"] = entry
    return {"all": {"hosts": entries}}


def ansible_playbook(
    run_dir: Path, playbook: str, inventory: dict[str, Any], forks: int, extra: dict[str, Any]
) -> tuple[float, float]:
    """One plain `ansible-playbook` process; (wall seconds, seconds until the
    first task header, i.e. its start-up). The environment is the one Herd's
    runner gives ansible-playbook (provisioning/ansible.py), and the working
    folder playbooks/ as there, so playbooks/ansible.cfg applies to both."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "inventory.json"
    path.write_text(json.dumps(inventory))
    path.chmod(0o600)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(run_dir / "cp"),
    }
    command = [
        str(Path(bin_dir) / "ansible-playbook"),
        "-i",
        str(path),
        "-f",
        str(forks),
        "--skip-tags",
        ",".join(SKIP_TAGS),
        "-e",
        json.dumps(extra),
        str(PLAYBOOKS / playbook),
    ]
    log = run_dir / f"{playbook}.log"
    first_task = None
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=PLAYBOOKS,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            if first_task is None and line.startswith("TASK ["):
                first_task = time.monotonic() - started
            out.write(line)
        rc = process.wait()
    wall = time.monotonic() - started
    if rc != 0:
        raise SystemExit(
            f"ansible-playbook {playbook} failed (rc {rc}); see the tail:\n"
            + log.read_text()[-4000:]
        )
    return wall, first_task or 0.0


# -- checks -------------------------------------------------------------------------


def work_done(fleet: TestFleet) -> dict[str, Counter[str]]:
    """Per host, the stand-in commands run (systemctl queries left out: they
    are Ansible asking, not work)."""
    done = {}
    for host in fleet:
        done[host.name] = Counter(
            call["command"]
            for call in host.standin.calls()
            if not call["command"].startswith(("systemctl show", "systemctl is-"))
        )
    return done


def clear_work(fleet: TestFleet) -> None:
    for host in fleet:
        host.standin.clear_calls()


def versions(inventory: dict[str, Any]) -> Counter[str]:
    """What each server's web process reports, on the port Herd placed it at
    (base + slot: not the host's default port)."""
    seen: Counter[str] = Counter()
    for variables in inventory["all"]["hosts"].values():
        url = f"http://127.0.0.1:{variables['mastodon_web_port']}/api/v2/instance"
        try:
            status, body = webcheck.get(url)
            seen[str(json.loads(body)["version"]) if status == 200 else f"HTTP {status}"] += 1
        except (OSError, ValueError, KeyError) as error:
            seen[f"unreachable ({type(error).__name__})"] += 1
    return seen


# -- the rollout ----------------------------------------------------------------------


def provision(stack: Stack, count: int, timeout: float) -> None:
    """Order and approve `count` servers, then wait for all of them with one
    deadline, printing how many are active as they come (50 provisionings on
    two cores take a quarter of an hour; a failed one stops the wait)."""
    ids = [stack.order(f"r{n}.bench-herd.social") for n in range(count)]
    with ThreadPoolExecutor(max_workers=min(count, 8)) as pool:
        list(pool.map(stack.approve, ids))
    deadline, shown = time.monotonic() + timeout, -1
    waiting = set(ids)
    while waiting:
        for server_id in sorted(waiting):
            server = stack.server(server_id)
            if server["state"] == "failed":
                raise AssertionError(f"server failed: {server}, jobs: {stack.jobs(server_id)}")
            if server["state"] == "active":
                assert server["version"] == VERSION.removeprefix("v"), server
                waiting.discard(server_id)
        if count - len(waiting) != shown:
            shown = count - len(waiting)
            print(f"  provisioned {shown}/{count}", flush=True)
        if waiting and time.monotonic() > deadline:
            states = Counter(stack.server(s)["state"] for s in waiting)
            raise AssertionError(f"timed out after {timeout:.0f} s; still waiting: {dict(states)}")
        time.sleep(2)


@dataclass
class PlainRun:
    strategy: str
    seconds: float
    startup: float
    cpu: CpuMeter
    work: dict[str, Counter[str]]
    versions: Counter[str]
    reset_seconds: float
    reset_versions: Counter[str]


def plain_run(
    run_dir: Path,
    inventory: dict[str, Any],
    fleet: TestFleet,
    forks: int,
    count: int,
    strategy: str,
) -> PlainRun:
    """Back to the old release with a plain rollback.yml (not timed), then
    one timed plain upgrade.yml with the given play strategy."""
    reset_seconds, _ = ansible_playbook(run_dir / "rollback", "rollback.yml", inventory, forks, {})
    reset_versions = versions(inventory)
    clear_work(fleet)
    with CpuMeter() as cpu:
        seconds, startup = ansible_playbook(
            run_dir / "upgrade",
            "upgrade.yml",
            inventory,
            forks,
            {"mastodon_upgrade_serial": count, "mastodon_upgrade_strategy": strategy},
        )
    plain = PlainRun(
        strategy,
        seconds,
        startup,
        cpu,
        work_done(fleet),
        versions(inventory),
        reset_seconds,
        reset_versions,
    )
    # Printed as the phase ends: a long run stopped later keeps its figures.
    print(
        f"plain {strategy}: reset (rollback.yml, not timed) {reset_seconds:.1f} s, versions "
        f"{dict(reset_versions)}; upgrade {seconds:.1f} s (start-up to first task "
        f"{startup:.1f} s), versions {dict(plain.versions)}",
        flush=True,
    )
    print(cpu.report(f"  plain run, {strategy}"), flush=True)
    return plain


def rollout(stack: Stack, cap: int, timeout: float) -> tuple[str, float, dict[str, Any]]:
    spec = {
        "target": TARGET,
        "selector": {"all": True},
        "waves": ["100%"],
        "concurrency": cap,
        "failure_budget": 0,
    }
    started = time.monotonic()
    created = stack.ok("operator", "POST", "/rollouts", json=spec)
    deadline = started + timeout
    while True:
        state = stack.ok("operator", "GET", f"/rollouts/{created['id']}")
        if state["state"] in ("completed", "halted", "aborted"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the rollout did not finish in {timeout:.0f} s: {state}")
        # Once a second, as an operator's status display would: the figure is
        # at most that much late, and a busier poll would take CPU from the
        # upgrades it measures.
        time.sleep(1.0)
    wall = time.monotonic() - started
    if state["state"] != "completed":
        raise SystemExit(f"the rollout did not complete: {state}\n{stack.tail()}")
    return created["id"], wall, state


def breakdown(engine: Engine, rollout_id: str) -> dict[str, float]:
    """Where a rollout's time goes: per upgrade job and per Ansible run
    (jobs started in the same tick share one, led by the first), in means,
    and in total."""
    with Session(engine) as session:
        targets = session.exec(
            select(RolloutTarget).where(RolloutTarget.rollout_id == uuid.UUID(rollout_id))
        ).all()
        jobs = [session.get(Job, t.job_id) for t in targets if t.job_id]
        rows = []
        for job in jobs:
            assert job is not None
            steps = {
                s.name: s
                for s in session.exec(select(JobStep).where(JobStep.job_id == job.id)).all()
            }
            run = steps["run_upgrade"]
            first_event = session.exec(
                select(JobEvent.at)
                .where(JobEvent.job_id == job.id, JobEvent.step == "run_upgrade")
                .order_by(col(JobEvent.at))
                .limit(1)
            ).first()
            step_walls = {n: _seconds(s.started_at, s.finished_at) for n, s in steps.items()}
            job_wall = _seconds(job.started_at, job.finished_at)
            leader = (job.params.get(SHARED_RUN_PARAM) or [str(job.id)])[0]
            rows.append(
                {
                    "leads": leader == str(job.id),
                    "leader": leader,
                    "created": job.created_at,
                    "finished": job.finished_at,
                    "queued": _seconds(job.created_at, job.started_at),
                    "job": job_wall,
                    "ansible": float(run.result.get("seconds", 0.0)),
                    "startup": _seconds(run.started_at, first_event),
                    "health_gate": step_walls["health_gate"],
                    "other": job_wall
                    - _seconds(job.started_at, run.finished_at)
                    - step_walls["health_gate"],
                }
            )
    leaders = [r for r in rows if r["leads"]]
    first_created = min(r["created"] for r in rows)
    last_finished = max(r["finished"] for r in rows)
    busy = sum(_seconds(r["created"], r["finished"]) for r in rows)
    mean = {
        key: statistics.fmean(float(r[key]) for r in rows)
        for key in ("queued", "job", "health_gate", "other")
    }
    per_run = {
        key: statistics.fmean(float(r[key]) for r in leaders) for key in ("ansible", "startup")
    }
    return {
        **mean,
        **per_run,
        "jobs": float(len(rows)),
        "runs": float(len(leaders)),
        "span": _seconds(first_created, last_finished),
        "busy": busy,
        "first_created": first_created.timestamp(),
        "last_finished": last_finished.timestamp(),
    }


def report_rollout(
    parts: dict[str, float],
    cap: int,
    own: float,
    rollout_created: float,
    rollout_finished: float,
    cpu: CpuMeter,
) -> None:
    """The rollout phase's figures, printed as soon as it ends."""
    print("where the rollout's time goes:")
    print(
        f"  rollout's own clock (created_at -> finished_at) {own:.1f} s; start call -> first "
        f"job {parts['first_created'] - rollout_created:.1f} s; last job done -> completed "
        f"{rollout_finished - parts['last_finished']:.1f} s"
    )
    idle = cap * parts["span"] - parts["busy"]
    print(
        f"  {parts['runs']:.0f} Ansible run(s) for {parts['jobs']:.0f} upgrade jobs "
        f"({parts['jobs'] / parts['runs']:.1f} servers a run); per run (mean): inside "
        f"ansible-runner {parts['ansible']:.1f} s, of which start-up to first task result "
        f"{parts['startup']:.1f} s"
    )
    print(
        f"  per upgrade job (mean): job {parts['job']:.1f} s, of which health gate "
        f"{parts['health_gate']:.1f} s and steps after the upgrade run {parts['other']:.1f} s; "
        f"queued {parts['queued']:.1f} s"
    )
    print(
        f"  concurrency slots idle between jobs (waiting for a rollout tick): "
        f"{idle:.0f} slot-s of {cap * parts['span']:.0f} ({idle / cap:.1f} s of wall time)"
    )
    print("where the CPU goes (bench/cpu.py; the phases are CPU-bound on this machine):")
    print(cpu.report("  Herd rollout"), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=8, help="test hosts")
    parser.add_argument(
        "--servers",
        type=int,
        default=None,
        help="N, the servers upgraded (default: one a host); Herd places them on the hosts",
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=None,
        help="Mastodon slots a host (default: enough for N, at least 2)",
    )
    parser.add_argument("--forks", type=int, default=4, help="Ansible forks = worker concurrency")
    parser.add_argument("--cap", type=int, default=None, help="rollout concurrency (forks)")
    parser.add_argument(
        "--reconcile-seconds",
        type=float,
        default=2.0,
        help="HERD_RECONCILE_SECONDS: how often the rollout engine ticks (production 30)",
    )
    parser.add_argument(
        "--plain-strategies",
        default="linear",
        help="the plain runs' play strategies, each after its own reset (linear is "
        "upgrade.yml's default and what Herd's shared runs use; free for comparison)",
    )
    args = parser.parse_args()
    strategies = [s for s in args.plain_strategies.split(",") if s]
    hosts, forks = args.hosts, args.forks
    count = args.servers or hosts
    slots = args.slots or max(2, -(-count // hosts))
    if slots * hosts < count:
        parser.error(f"{hosts} hosts of {slots} slots cannot hold {count} servers")
    cap = args.cap or forks
    started_all = time.monotonic()

    with live_herd(HERD_RECONCILE_SECONDS=str(args.reconcile_seconds)) as herd:
        root, engine, world, repo = herd.root, herd.engine, herd.world, herd.repo
        names = [f"h{n:02d}" for n in range(1, hosts + 1)]
        # At least two slots a host even at one server each: Herd's placement can
        # put a second server on a host when approvals race, and its ports must
        # stay in the host's own block.
        fleet = TestFleet(root / "fleet", names, shared_paths=[repo.path], slots=slots)
        stack: Stack | None = None
        try:
            fleet.start()
            print(
                f"rollout overhead: N = {count} servers on {hosts} test hosts ({slots} slots "
                f"each), forks = {forks}, "
                f"worker concurrency = {forks}, rollout concurrency cap = {cap}, one wave of "
                f"100%, rollout tick (HERD_RECONCILE_SECONDS) = {args.reconcile_seconds:g} s; "
                f"{VERSION} -> {TARGET}; PostgreSQL + Redis, stand-in Mastodon",
                flush=True,
            )
            with api_process() as api:
                stack = Stack(api=api, world=world, fleet=fleet, logs=root)
                stack.register_hosts()
                stack.start_worker(concurrency=forks).wait_ready()
                began = time.monotonic()
                provision(stack, count, timeout=600 + 60 * count)
                provisioned = time.monotonic() - began
                print(
                    f"set-up: {count} servers provisioned through Herd (approve -> active, "
                    f"worker concurrency {forks}) in {provisioned:.1f} s",
                    flush=True,
                )
                stack.ok("operator", "POST", "/releases", json={"tag": TARGET, "security": True})
                clear_work(fleet)
                with CpuMeter() as herd_cpu:
                    rollout_id, herd_seconds, done = rollout(stack, cap, 600 + 120 * count)
                herd_work = work_done(fleet)
                print(f"rollout: {herd_seconds:.1f} s (start call -> completed)", flush=True)
                inventory = plain_inventory(engine, root / "plain", TARGET)
                herd_versions = versions(inventory)
                per_host = Counter(
                    Counter(n.rsplit("-slot", 1)[0] for n in inventory["all"]["hosts"]).values()
                )
                print(
                    f"placement: {len(inventory['all']['hosts'])} servers on hosts holding "
                    + ", ".join(f"{k} server(s): {v}" for k, v in sorted(per_host.items())),
                    flush=True,
                )
                parts = breakdown(engine, rollout_id)
                own = _seconds(
                    datetime.fromisoformat(done["created_at"].replace("Z", "+00:00")),
                    datetime.fromisoformat(done["finished_at"].replace("Z", "+00:00")),
                )
                rollout_created = datetime.fromisoformat(
                    done["created_at"].replace("Z", "+00:00")
                ).timestamp()
                rollout_finished = datetime.fromisoformat(
                    done["finished_at"].replace("Z", "+00:00")
                ).timestamp()
                report_rollout(parts, cap, own, rollout_created, rollout_finished, herd_cpu)
                stack.stop()  # a quiet machine for the plain runs

            plains = [
                plain_run(root / "plain" / strategy, inventory, fleet, forks, count, strategy)
                for strategy in strategies
            ]
        finally:
            if stack is not None:
                stack.stop()
            fleet.stop()

    want = Counter({TARGET.removeprefix("v"): count})
    commands = sum(sum(c.values()) for c in herd_work.values()) / hosts
    print(f"versions after the rollout {dict(herd_versions)}")
    for plain in plains:
        print(
            f"{plain.strategy}: versions after the reset (plain rollback.yml, "
            f"{plain.reset_seconds:.1f} s) {dict(plain.reset_versions)}, after the plain run "
            f"{dict(plain.versions)}; same work as the rollout (stand-in commands per host, "
            f"{commands:.0f} each): {'yes' if plain.work == herd_work else 'NO'}"
        )

    print()
    print(f"N = {count} servers on {hosts} hosts, forks = {forks}")
    print(f"Herd rollout (start call -> completed):                 {herd_seconds:7.1f} s")
    for plain in plains:
        print(
            f"plain ansible-playbook upgrade.yml -f {forks}, {plain.strategy + ':':<8}"
            f"        {plain.seconds:7.1f} s   ratio rollout / plain "
            f"{herd_seconds / plain.seconds:.3f}"
            + ("   (aim < 1.15)" if plain.strategy == "linear" else "")
        )
    for plain in plains:
        print(
            f"  plain run, {plain.strategy}: start-up to first task {plain.startup:.1f} s once; "
            f"{plain.seconds * forks / count:.1f} slot-s per server against "
            f"{parts['job']:.1f} s per Herd job"
        )
    for plain in plains:
        print(f"  CPU ratio rollout / plain {plain.strategy}: {herd_cpu.busy / plain.cpu.busy:.3f}")
    print(f"benchmark run time {time.monotonic() - started_all:.0f} s (set-up included)")
    if herd_versions != want or any(p.versions != want for p in plains):
        raise SystemExit("a run left a host on the wrong version")


if __name__ == "__main__":
    main()
