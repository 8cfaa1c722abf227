"""Backups as the worker leaves them: backups.yml's report and a finished
`backups` job holding the list it found."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.backups.report import parse_report
from controlplane.jobs.models import Job, JobState, JobStep
from controlplane.servers.models import Server

DIR = "/home/mastodon3/herd/backups"
PRE_UPGRADE = "pre-upgrade-v4.5.2-20261130T021500Z"


def manifest(label: str, version: str, taken_at: str, files: list[str]) -> str:
    return json.dumps(
        {
            "label": label,
            "server": "live.org-a-herd.social",
            "version": version,
            "commit": "a" * 40,
            "database": "mastodon_x",
            "taken_at": taken_at,
            "files": files,
        }
    )


def report() -> dict[str, Any]:
    """What backups.yml's last task prints for a host with a daily backup,
    a pre-upgrade one copied off the host, and one cut off before its
    manifest was written."""
    folders = [f"{DIR}/daily-20261129", f"{DIR}/{PRE_UPGRADE}", f"{DIR}/daily-20261201"]
    files = [
        (f"{DIR}/daily-20261129/database.dump", 1000),
        (f"{DIR}/daily-20261129/env.production", 200),
        (f"{DIR}/daily-20261129/manifest.json", 50),
        (f"{DIR}/{PRE_UPGRADE}/database.dump", 3000),
        (f"{DIR}/{PRE_UPGRADE}/env.production", 200),
        (f"{DIR}/{PRE_UPGRADE}/system.tar.gz", 5000),
        (f"{DIR}/{PRE_UPGRADE}/manifest.json", 60),
        (f"{DIR}/{PRE_UPGRADE}/uploaded", 8),
        (f"{DIR}/daily-20261201/database.dump.partial", 400),
    ]
    manifests = {
        f"{DIR}/daily-20261129/manifest.json": manifest(
            "daily-20261129", "v4.5.1", "2026-11-29T03:00:00Z", ["database.dump", "env.production"]
        ),
        f"{DIR}/{PRE_UPGRADE}/manifest.json": manifest(
            PRE_UPGRADE,
            "v4.5.1",
            "2026-11-30T02:15:00Z",
            ["database.dump", "env.production", "system.tar.gz"],
        ),
    }
    partial_time = datetime(2026, 12, 1, 3, 0, tzinfo=UTC).timestamp()
    return {
        "msg": {
            "herd_backups": {
                "dir": DIR,
                "folders": folders,
                "folder_times": [1.0, 2.0, partial_time],
                "files": [path for path, _ in files],
                "sizes": [size for _, size in files],
                "manifest_paths": list(manifests),
                "manifests": list(manifests.values()),
            }
        }
    }


def listed(
    engine: Engine,
    server_id: uuid.UUID,
    report: dict[str, Any],
    state: JobState = JobState.succeeded,
    finished_at: datetime | None = None,
) -> uuid.UUID:
    """A finished `backups` job with the list its step stored, as the worker
    leaves it."""
    backups = parse_report(report) or []
    with Session(engine) as session:
        job = Job(
            kind="backups",
            server_id=server_id,
            state=state,
            finished_at=finished_at or datetime.now(UTC),
        )
        session.add(job)
        session.flush()
        session.add(
            JobStep(
                job_id=job.id,
                position=0,
                name="list_backups",
                result={"host": "h1", "backups": [b.to_json() for b in backups]},
            )
        )
        session.commit()
        return job.id


def place(engine: Engine, server_id: uuid.UUID, slot: int = 3) -> None:
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        server.slot = slot
        session.add(server)
        session.commit()


def backups_jobs(engine: Engine) -> list[Job]:
    with Session(engine) as session:
        return list(session.exec(select(Job).where(Job.kind == "backups")).all())
