"""A server's backups through the API: the list the last `backups` job
found on the host, the final backups in the backups bucket (moto), who may
read and who may refresh."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.backups.report import parse_report
from controlplane.jobs.models import JobState
from controlplane.storage import ServerStorage, get_storage_settings
from tests.backups.helpers import PRE_UPGRADE, backups_jobs, listed, manifest, place, report
from tests.factories import World, build_world
from tests.moto import REGION, Moto, free_port


def test_the_report_becomes_a_list_newest_first() -> None:
    backups = parse_report(report())
    assert backups is not None
    assert [b.label for b in backups] == ["daily-20261201", PRE_UPGRADE, "daily-20261129"]
    partial, pre, daily = backups
    assert (partial.complete, partial.version, partial.size_bytes) == (False, "", 400)
    assert partial.taken_at == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert (pre.complete, pre.version, pre.uploaded) == (True, "v4.5.1", True)
    assert pre.size_bytes == 3000 + 200 + 5000 + 60 + 8
    assert pre.files == ("database.dump", "env.production", "system.tar.gz")
    assert pre.taken_at == datetime(2026, 11, 30, 2, 15, tzinfo=UTC)
    assert (daily.size_bytes, daily.uploaded) == (1250, False)
    # Any other task's result is not a report; an empty folder is no backup.
    assert parse_report({"msg": "hello"}) is None
    empty = report()
    empty["msg"]["herd_backups"].update(
        folders=[], folder_times=[], files=[], sizes=[], manifest_paths=[], manifests=[]
    )
    assert parse_report(empty) == []


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


def test_the_list_comes_from_the_last_successful_job(
    client: TestClient, world: World, engine: Engine
) -> None:
    url = f"/api/v1/servers/{world.ids['server']}/backups"
    before = client.get(url, headers=world.headers("viewer"))
    assert before.status_code == 200, before.text
    assert before.json()["on_host"] == []
    assert before.json()["checked_at"] is None
    assert before.json()["in_storage"] == []

    older = report()
    older["msg"]["herd_backups"]["folders"] = older["msg"]["herd_backups"]["folders"][:1]
    older["msg"]["herd_backups"]["folder_times"] = [1.0]
    listed(engine, world.ids["server"], older, finished_at=datetime.now(UTC) - timedelta(days=1))
    newest = listed(engine, world.ids["server"], report())
    # A failed run afterwards does not hide what the last good one found.
    listed(engine, world.ids["server"], {"msg": {}}, state=JobState.failed)

    body = client.get(url, headers=world.headers("viewer")).json()
    assert body["checked_by_job"] == str(newest)
    assert body["checked_at"] is not None
    assert [b["label"] for b in body["on_host"]] == [
        "daily-20261201",
        PRE_UPGRADE,
        "daily-20261129",
    ]
    pre = body["on_host"][1]
    assert pre["version"] == "v4.5.1"
    assert pre["size_bytes"] == 8268
    assert pre["taken_at"].startswith("2026-11-30T02:15:00")
    assert body["on_host"][0]["complete"] is False
    assert body["refresh_job_id"] is None

    # Another organisation cannot tell the server exists.
    outsider = client.get(url, headers=world.headers("outsider"))
    assert outsider.status_code == 404
    assert outsider.headers["content-type"] == "application/problem+json"
    missing = client.get(f"/api/v1/servers/{uuid.uuid4()}/backups", headers=world.headers("owner"))
    assert missing.json()["detail"] == outsider.json()["detail"]


def test_refreshing_starts_one_job_for_those_who_may(
    client: TestClient, world: World, engine: Engine
) -> None:
    url = f"/api/v1/servers/{world.ids['server']}/backups/refresh"
    # Not placed on a host yet (no slot): nothing to look at.
    unplaced = client.post(url, headers=world.headers("admin"))
    assert unplaced.status_code == 409
    assert unplaced.json()["type"] == "urn:herd:problem:server-not-placed"
    place(engine, world.ids["server"])

    for who, status in (("viewer", 403), ("billing", 403), ("readonly", 403), ("outsider", 404)):
        refused = client.post(url, headers=world.headers(who))
        assert refused.status_code == status, (who, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert backups_jobs(engine) == []

    started = client.post(url, headers=world.headers("admin"))
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["kind"], job["server_id"], job["state"]) == (
        "backups",
        str(world.ids["server"]),
        "pending",
    )
    # Asked again (by staff) while it is pending: the same job.
    again = client.post(url, headers=world.headers("operator"))
    assert again.status_code == 202
    assert again.json()["id"] == job["id"]
    assert len(backups_jobs(engine)) == 1
    shown = client.get(
        f"/api/v1/servers/{world.ids['server']}/backups", headers=world.headers("viewer")
    )
    assert shown.json()["refresh_job_id"] == job["id"]
    with Session(engine) as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.action == "server.backups_refresh")
        ).all()
    assert [e.details["job"] for e in entries] == [job["id"]]


@pytest.fixture
def storage(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """Herd configured through HERD_S3_* for moto, as an operator would."""
    for name, value in {
        "endpoint_url": moto.url,
        "region": REGION,
        "access_key_id": moto.admin_key_id,
        "secret_access_key": moto.admin_secret,
        "bucket_prefix": "test-",
        "max_attempts": "1",
    }.items():
        monkeypatch.setenv(f"HERD_S3_{name.upper()}", value)
    get_storage_settings.cache_clear()
    return moto


def _grant(engine: Engine, server_id: uuid.UUID, bucket: str) -> None:
    with Session(engine) as session:
        session.add(
            ServerStorage(
                server_id=server_id,
                media_bucket=f"test-{server_id.hex}-media",
                backups_bucket=bucket,
                access_key_id="AKIAEXAMPLE",
                secret_access_key_encrypted="not-used-here",
            )
        )
        session.commit()


def test_final_backups_in_the_bucket_are_listed(
    client: TestClient, world: World, engine: Engine, storage: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    server_id = world.ids["server"]
    bucket = f"test-{server_id.hex}-backups"
    url = f"/api/v1/servers/{server_id}/backups"
    _grant(engine, server_id, bucket)
    # The bucket is not there yet: nothing to list, and no error.
    assert client.get(url, headers=world.headers("viewer")).json()["in_storage"] == []

    s3 = storage.admin("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    final_manifest = manifest(
        "final", "v4.5.2", "2026-12-01T10:00:00Z", ["database.dump", "env.production"]
    )
    for key, body in {
        "final/database.dump": b"d" * 700,
        "final/env.production": b"e" * 100,
        "final/manifest.json": final_manifest.encode(),
        "stray-at-the-top": b"x",
    }.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    body = client.get(url, headers=world.headers("viewer")).json()
    assert body["storage_error"] is None
    [final] = body["in_storage"]
    assert final["label"] == "final"
    assert final["version"] == "v4.5.2"
    assert final["taken_at"].startswith("2026-12-01T10:00:00")
    assert final["size_bytes"] == 700 + 100 + len(final_manifest.encode())
    assert final["files"] == ["database.dump", "env.production"]
    assert final["bucket"] == bucket

    # The store down: the host's list is still served, with the reason.
    listed(engine, server_id, report())
    monkeypatch.setenv("HERD_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    get_storage_settings.cache_clear()
    down = client.get(url, headers=world.headers("viewer"))
    assert down.status_code == 200
    assert down.json()["in_storage"] == []
    assert "listing bucket" in down.json()["storage_error"]
    assert len(down.json()["on_host"]) == 3
