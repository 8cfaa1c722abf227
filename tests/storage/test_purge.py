"""A deleted server's media and backups stay for the retention period, then
a purge job deletes them; on both databases, against moto with IAM enforced,
with time injected."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.jobs.models import Job, JobState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.storage import ServerStorage, get_storage_settings, storage_names
from controlplane.storage.retention import PURGE_JOB, start_due_purges
from provisioning import pipeline
from provisioning.registry import pipelines, redactor_for
from tests.factories import build_world
from tests.moto import Moto
from tests.storage.test_provision_storage import (
    _buckets,
    _herd_users,
    _provision_storage,
    _rows,
)
from tests.storage.test_provision_storage import (
    storage as storage,
)


@pytest.fixture
def deleted_server(storage: Moto, engine: Engine) -> uuid.UUID:
    """A server that had storage, holding media and a backup, deleted now."""
    server_id = build_world(engine).ids["requested_server"]
    assert _provision_storage(engine, server_id).state == JobState.succeeded
    names = storage_names(server_id, get_storage_settings())
    s3 = storage.admin("s3")
    s3.put_object(Bucket=names.media_bucket, Key="media/cat.png", Body=b"png")
    s3.put_object(Bucket=names.backups_bucket, Key="2026-12-01/db.dump", Body=b"dump")
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        server.state, server.state_changed_at = ServerState.deleted, utcnow()
        session.add(server)
        session.commit()
    return server_id


def _start(engine: Engine, days_later: float) -> list[uuid.UUID]:
    with Session(engine) as session:
        started = [
            job.id for job in start_due_purges(session, utcnow() + timedelta(days=days_later))
        ]
        session.info.clear()  # no broker here: the test runs the jobs itself
        session.commit()
    return started


def _run(engine: Engine, job_id: uuid.UUID) -> pipeline.RunOutcome:
    return pipeline.run_job(engine, job_id, pipelines(), redactor_for=redactor_for)


def test_data_stays_for_the_retention_period_then_goes(
    storage: Moto, engine: Engine, deleted_server: uuid.UUID
) -> None:
    names = storage_names(deleted_server, get_storage_settings())
    retention = get_storage_settings().data_retention_days
    assert retention == 30
    assert _start(engine, retention - 1) == []
    assert names.media_bucket in _buckets(storage)

    [job_id] = _start(engine, retention + 0.01)
    # Asked again before the job has run: no second job.
    assert _start(engine, retention + 0.02) == []
    assert _run(engine, job_id).state == JobState.succeeded
    assert names.media_bucket not in _buckets(storage)
    assert names.backups_bucket not in _buckets(storage)
    assert _herd_users(storage) == []
    assert _rows(engine) == []
    # Nothing left to purge: later passes start nothing.
    assert _start(engine, retention + 5) == []
    with Session(engine) as session:
        [entry] = session.exec(
            select(AuditEntry).where(AuditEntry.action == "server.storage_purge")
        ).all()
        assert entry.target_id == str(deleted_server)
        assert session.get(Job, job_id).kind == PURGE_JOB  # type: ignore[union-attr]


def test_a_purge_interrupted_halfway_is_finished_by_the_next_run(
    storage: Moto, engine: Engine, deleted_server: uuid.UUID
) -> None:
    names = storage_names(deleted_server, get_storage_settings())
    # The media bucket went, then the worker died before the backups bucket.
    storage.admin("s3").delete_object(Bucket=names.media_bucket, Key="media/cat.png")
    storage.admin("s3").delete_bucket(Bucket=names.media_bucket)
    [job_id] = _start(engine, 31)
    assert _run(engine, job_id).state == JobState.succeeded
    assert names.backups_bucket not in _buckets(storage)
    assert _rows(engine) == []


def test_a_server_brought_back_keeps_its_data(
    storage: Moto, engine: Engine, deleted_server: uuid.UUID
) -> None:
    [job_id] = _start(engine, 31)
    with Session(engine) as session:
        server = session.get(Server, deleted_server)
        assert server is not None
        server.state = ServerState.active  # staff restored it before the job ran
        session.add(server)
        session.commit()
    outcome = _run(engine, job_id)
    assert outcome.state == JobState.failed
    names = storage_names(deleted_server, get_storage_settings())
    assert names.media_bucket in _buckets(storage)
    assert len(_rows(engine)) == 1


def test_without_storage_nothing_is_purged(engine: Engine) -> None:
    with Session(engine) as session:
        assert start_due_purges(session, utcnow() + timedelta(days=365)) == []
        assert session.exec(select(ServerStorage)).all() == []
