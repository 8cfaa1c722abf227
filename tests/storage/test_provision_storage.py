"""Object storage in the provisioning pipeline: the prepare_storage step run
in-process by the real job runner, against moto with IAM enforced, on
SQLite and PostgreSQL.

The step must converge whatever happens to the worker: a worker killed
after the store made a key and before the key was recorded leaves an orphan
key, which the next run deletes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.crypto import secret_box
from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job, JobEvent, JobState, JobStep
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.storage import (
    ServerStorage,
    StorageGrant,
    StorageNotConfigured,
    StorageSettings,
    get_storage_settings,
    grant_for,
    grant_secrets,
    mastodon_env,
    storage_names,
    storage_variables,
)
from controlplane.storage import grants as storage_grants
from provisioning import pipeline
from provisioning.ansible import PlaybookResult
from provisioning.redaction import MASK
from provisioning.registry import redactor_for
from provisioning.render import render
from provisioning.steps import billing as billing_steps
from provisioning.steps import provision, runs
from provisioning.steps.storage import prepare_storage
from tests.factories import build_world
from tests.moto import REGION, Moto, free_port
from tests.playbooks.samples import sample_vars
from tests.playbooks.test_templates import ENV, ruby_dotenv

KIND = "storage-test"
STEP = next(step for step in provision.PROVISION.steps if step.name == "prepare_storage")


class WorkerKilled(BaseException):
    """What SIGKILL looks like from inside: nothing of the runner's catches it."""


@pytest.fixture(autouse=True)
def _fresh_storage_settings() -> Iterator[None]:
    get_storage_settings.cache_clear()
    yield
    get_storage_settings.cache_clear()


def _configure(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"HERD_S3_{name.upper()}", value)
    get_storage_settings.cache_clear()


@pytest.fixture
def storage(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    """Herd configured through HERD_S3_* for moto, as an operator would."""
    _configure(
        monkeypatch,
        endpoint_url=moto.url,
        region=REGION,
        access_key_id=moto.admin_key_id,
        secret_access_key=moto.admin_secret,
        bucket_prefix="test-",
        max_attempts="1",
    )
    return moto


@pytest.fixture
def server_id(engine: Engine) -> uuid.UUID:
    return build_world(engine).ids["requested_server"]


def _new_job(engine: Engine, server_id: uuid.UUID, steps: list[str]) -> uuid.UUID:
    with Session(engine) as session:
        job = jobs.create_job(session, KIND, steps, server_id)
        session.info.clear()  # no broker here: the test runs the job itself
        session.commit()
        return job.id


def _run(
    engine: Engine, job_id: uuid.UUID, *steps: pipeline.Step, worker: str = "worker-a"
) -> pipeline.RunOutcome:
    return pipeline.run_job(
        engine,
        job_id,
        {KIND: pipeline.Pipeline(KIND, steps or (STEP,))},
        lease_seconds=30,
        redactor_for=redactor_for,
        owner=worker,
    )


def _provision_storage(engine: Engine, server_id: uuid.UUID) -> pipeline.RunOutcome:
    return _run(engine, _new_job(engine, server_id, ["prepare_storage"]))


def _expire_lease(engine: Engine, job_id: uuid.UUID) -> None:
    """What the reconciler finds once a dead worker's lease has run out."""
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(lease_expires_at=utcnow()))
        session.commit()


def _step(engine: Engine, job_id: uuid.UUID) -> JobStep:
    with Session(engine) as session:
        return session.exec(select(JobStep).where(JobStep.job_id == job_id)).one()


def _rows(engine: Engine) -> list[ServerStorage]:
    with Session(engine) as session:
        return list(session.exec(select(ServerStorage)).all())


def _variables(engine: Engine, server_id: uuid.UUID) -> dict[str, Any]:
    with Session(engine) as session:
        return storage_variables(session, server_id)


def _herd_users(moto: Moto) -> list[str]:
    users = moto.admin("iam").list_users(PathPrefix="/herd/")["Users"]
    return sorted(user["UserName"] for user in users)


def _keys(moto: Moto, user: str) -> list[str]:
    answer = moto.admin("iam").list_access_keys(UserName=user)
    return [key["AccessKeyId"] for key in answer["AccessKeyMetadata"]]


def _buckets(moto: Moto) -> list[str]:
    return sorted(b["Name"] for b in moto.admin("s3").list_buckets()["Buckets"])


def _assert_one_working_grant(moto: Moto, engine: Engine, server_id: uuid.UUID) -> str:
    """Exactly one user, one key, one row, and the recorded secret is the
    key's: Mastodon can write its media with it. Returns the secret."""
    names = storage_names(server_id, get_storage_settings())
    assert _herd_users(moto) == [names.user_name]
    [row] = _rows(engine)
    assert _keys(moto, names.user_name) == [row.access_key_id]
    variables = _variables(engine, server_id)
    secret = variables["mastodon_s3_secret_access_key"]
    s3 = moto.client("s3", row.access_key_id, secret)
    s3.put_object(Bucket=names.media_bucket, Key="media/probe.txt", Body=b"ok")
    return secret


def _kill_after_the_store_answers(
    monkeypatch: pytest.MonkeyPatch, made: list[StorageGrant]
) -> None:
    """The worker dies once the store has made the key, before the row commits."""
    real = storage_grants.ensure_server_storage

    def dying(*args: Any, **kwargs: Any) -> StorageGrant:
        grant = real(*args, **kwargs)
        made.append(grant)
        monkeypatch.setattr(storage_grants, "ensure_server_storage", real)
        raise WorkerKilled

    monkeypatch.setattr(storage_grants, "ensure_server_storage", dying)


# -- the step -------------------------------------------------------------------------


def test_the_provision_pipeline_runs_this_step() -> None:
    assert STEP.run is prepare_storage


def test_running_the_step_twice_creates_everything_once(
    storage: Moto, engine: Engine, server_id: uuid.UUID
) -> None:
    first = _provision_storage(engine, server_id)
    assert first.state == JobState.succeeded
    names = storage_names(server_id, get_storage_settings())
    assert _buckets(storage) == sorted([names.media_bucket, names.backups_bucket])
    [row] = _rows(engine)
    assert (row.media_bucket, row.backups_bucket) == (names.media_bucket, names.backups_bucket)

    assert _provision_storage(engine, server_id).state == JobState.succeeded
    [again] = _rows(engine)
    assert again.access_key_id == row.access_key_id
    assert again.secret_access_key_encrypted == row.secret_access_key_encrypted
    assert _buckets(storage) == sorted([names.media_bucket, names.backups_bucket])
    _assert_one_working_grant(storage, engine, server_id)


@pytest.mark.parametrize("replacing", [False, True], ids=["first-key", "key-deleted-by-hand"])
def test_a_worker_killed_between_the_store_and_the_commit_leaves_one_key(
    storage: Moto,
    engine: Engine,
    server_id: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
    replacing: bool,
) -> None:
    names = storage_names(server_id, get_storage_settings())
    recorded: str | None = None
    if replacing:
        # The recorded key is gone from the store, so the next run makes a
        # new one: the same crash window as a first grant, with a row.
        _provision_storage(engine, server_id)
        [row] = _rows(engine)
        recorded = row.access_key_id
        storage.admin("iam").delete_access_key(UserName=names.user_name, AccessKeyId=recorded)

    made: list[StorageGrant] = []
    _kill_after_the_store_answers(monkeypatch, made)
    job_id = _new_job(engine, server_id, ["prepare_storage"])
    with pytest.raises(WorkerKilled):
        _run(engine, job_id)
    [orphan] = made
    assert orphan.secret_access_key  # made, and its secret died with the worker
    assert _keys(storage, names.user_name) == [orphan.access_key_id]
    assert [row.access_key_id for row in _rows(engine)] == ([recorded] if recorded else [])

    _expire_lease(engine, job_id)
    assert _run(engine, job_id, worker="worker-b").state == JobState.succeeded

    _assert_one_working_grant(storage, engine, server_id)
    [row] = _rows(engine)
    assert row.access_key_id not in (orphan.access_key_id, recorded)


def test_the_secret_is_stored_encrypted_and_kept_out_of_results_and_events(
    storage: Moto, engine: Engine, server_id: uuid.UUID
) -> None:
    _provision_storage(engine, server_id)
    secret = _assert_one_working_grant(storage, engine, server_id)

    with engine.connect() as connection:
        [raw] = connection.execute(text("SELECT * FROM server_storage")).mappings().all()
    assert all(secret not in str(value) for value in raw.values())
    assert secret_box().decrypt(raw["secret_access_key_encrypted"]) == secret
    assert secret not in repr(_rows(engine))

    with Session(engine) as session:
        steps = session.exec(select(JobStep)).all()
        events = session.exec(select(JobEvent)).all()
    kept = json.dumps([[s.result, s.error] for s in steps] + [e.result for e in events])
    assert secret not in kept
    [result] = [s.result for s in steps if s.result]
    assert result == {
        "media_bucket": raw["media_bucket"],
        "backups_bucket": raw["backups_bucket"],
        "access_key_id": raw["access_key_id"],
    }


def test_the_job_redactor_masks_the_storage_secret(
    storage: Moto, engine: Engine, server_id: uuid.UUID
) -> None:
    _provision_storage(engine, server_id)
    secret = _variables(engine, server_id)["mastodon_s3_secret_access_key"]
    with Session(engine) as session:
        job = session.exec(select(Job).where(Job.server_id == server_id)).first()
        assert job is not None
        redactor = redactor_for(session, job)
        assert grant_secrets(session, server_id) == [secret]
    assert redactor.text(f"AWS_SECRET_ACCESS_KEY={secret} rejected") == (
        f"AWS_SECRET_ACCESS_KEY={MASK} rejected"
    )
    assert redactor.value({"stdout": f"uploading with {secret}"}) == {
        "stdout": f"uploading with {MASK}"
    }


# -- the role variables ---------------------------------------------------------------


def test_storage_variables_point_mastodon_at_its_bucket(
    storage: Moto, engine: Engine, server_id: uuid.UUID
) -> None:
    _provision_storage(engine, server_id)
    secret = _assert_one_working_grant(storage, engine, server_id)
    [row] = _rows(engine)
    assert _variables(engine, server_id) == {
        "mastodon_s3_enabled": True,
        "mastodon_s3_bucket": row.media_bucket,
        "mastodon_s3_region": REGION,
        "mastodon_s3_endpoint": storage.url,
        "mastodon_s3_protocol": "http",
        "mastodon_s3_hostname": storage.url.removeprefix("http://"),
        "mastodon_s3_alias_host": "",
        # Path style is Mastodon's default with an endpoint: no override.
        "mastodon_s3_override_path_style": False,
        "mastodon_s3_permission": "public-read",
        "mastodon_s3_access_key_id": row.access_key_id,
        "mastodon_s3_secret_access_key": secret,
    }


@pytest.mark.parametrize(
    "overrides",
    [{}, {"alias_host": "media.provider.example/{bucket}", "public_read": "policy"}],
    ids=["defaults", "alias-host-and-policy"],
)
def test_the_rendered_env_says_what_mastodon_env_says(
    storage: Moto,
    engine: Engine,
    server_id: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, str],
) -> None:
    """The role variables, through the real template, give Mastodon exactly
    the S3 settings the storage library decided on."""
    _provision_storage(engine, server_id)
    # Settings are read when variables are made, so a changed alias host
    # reaches the next playbook run without a new grant.
    _configure(monkeypatch, **overrides)
    variables = _variables(engine, server_id)
    [row] = _rows(engine)
    settings = get_storage_settings()
    expected = mastodon_env(
        grant_for(server_id, row.access_key_id, settings=settings),
        variables["mastodon_s3_secret_access_key"],
    )
    # The template writes the override only when it is true, Mastodon's
    # default being false.
    if expected["S3_OVERRIDE_PATH_STYLE"] == "false":
        del expected["S3_OVERRIDE_PATH_STYLE"]

    env = ruby_dotenv(render(ENV, sample_vars(**variables)))
    assert {k: v for k, v in env.items() if k.startswith(("S3_", "AWS_"))} == expected
    if overrides:
        assert env["S3_ALIAS_HOST"] == f"media.provider.example/{row.media_bucket}"
        assert env["S3_PERMISSION"] == ""


def test_the_playbook_step_passes_the_storage_variables(
    storage: Moto, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(engine)
    server_id = world.ids["server"]  # placed on host h1
    with Session(engine) as session:
        session.execute(update(Server).where(col(Server.id) == server_id).values(slot=0))
        session.commit()
    passed: list[dict[str, Any]] = []

    def playbook(
        _name: str, _inventory: Any, extravars: dict[str, Any], *_a: Any, **_k: Any
    ) -> PlaybookResult:
        passed.append(extravars)
        return PlaybookResult(status="successful", rc=0)

    monkeypatch.setattr(runs, "run_playbook", playbook)
    run_provision = provision.playbook_step("provision.yml")
    job_id = _new_job(engine, server_id, ["prepare_storage", run_provision.name])
    assert _run(engine, job_id, STEP, run_provision).state == JobState.succeeded

    [extravars] = passed
    storage_only = _variables(engine, server_id)
    assert storage_only["mastodon_s3_enabled"] is True
    assert {k: extravars[k] for k in storage_only} == storage_only
    assert extravars["mastodon_local_domain"] == "live.org-a-herd.social"


# -- failures and storage switched off -------------------------------------------------


def test_without_storage_settings_the_step_is_skipped(engine: Engine, server_id: uuid.UUID) -> None:
    job_id = _new_job(engine, server_id, ["prepare_storage"])
    assert _run(engine, job_id).state == JobState.succeeded
    assert "not configured" in _step(engine, job_id).result["skipped"]
    assert _rows(engine) == []
    assert _variables(engine, server_id) == {}
    with Session(engine) as session:
        assert grant_secrets(session, server_id) == []


def test_a_server_with_a_grant_refuses_to_lose_it_when_storage_is_switched_off(
    storage: Moto, engine: Engine, server_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    _provision_storage(engine, server_id)
    _configure(monkeypatch, enabled="false")
    # Writing S3_ENABLED=false would hide every file the server has.
    with pytest.raises(StorageNotConfigured, match="keeps its media"):
        _variables(engine, server_id)


def test_a_changed_bucket_prefix_stops_rather_than_moving_media(
    storage: Moto, engine: Engine, server_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    _provision_storage(engine, server_id)
    [row] = _rows(engine)
    before = _buckets(storage)
    _configure(monkeypatch, bucket_prefix="other-")

    job_id = _new_job(engine, server_id, ["prepare_storage"])
    assert _run(engine, job_id).state == JobState.failed
    assert "HERD_S3_BUCKET_PREFIX" in (_step(engine, job_id).error or "")
    assert _buckets(storage) == before
    assert _variables(engine, server_id)["mastodon_s3_bucket"] == row.media_bucket


def test_an_unreachable_store_is_retried(
    engine: Engine, server_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(
        monkeypatch,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="AKIAHERDTEST",
        secret_access_key="not-a-real-secret",
        connect_timeout_seconds="0.5",
        max_attempts="1",
    )
    outcome = _provision_storage(engine, server_id)
    assert outcome.state == JobState.pending
    assert outcome.retry_in is not None
    assert _rows(engine) == []


def test_refused_credentials_fail_the_step_with_the_stores_reason(
    storage: Moto, engine: Engine, server_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, secret_access_key="wrong-secret")
    job_id = _new_job(engine, server_id, ["prepare_storage"])
    assert _run(engine, job_id).state == JobState.failed
    assert "SignatureDoesNotMatch" in (_step(engine, job_id).error or "")
    assert _rows(engine) == []


# -- settings -------------------------------------------------------------------------

AWS_EXAMPLE = ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


@pytest.mark.parametrize(
    ("key_id", "secret"),
    [AWS_EXAMPLE, ("AKIAHERDREAL", "changeme"), ("minioadmin", "minioadmin")],
)
def test_production_refuses_placeholder_credentials(key_id: str, secret: str) -> None:
    values: dict[str, Any] = {"access_key_id": key_id, "secret_access_key": secret}
    StorageSettings(**values)  # fine for a development store
    with pytest.raises(ValidationError, match="placeholder") as caught:
        StorageSettings(environment="production", **values)
    assert secret not in str(caught.value)


def test_production_is_read_from_herd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERD_ENVIRONMENT", "production")
    _configure(monkeypatch, access_key_id=AWS_EXAMPLE[0], secret_access_key=AWS_EXAMPLE[1])
    with pytest.raises(ValidationError, match="placeholder"):
        get_storage_settings()


settings_cases: list[tuple[dict[str, Any], bool]] = [
    ({}, False),
    ({"endpoint_url": "https://rgw.provider.example"}, True),
    ({"access_key_id": "AKIAHERDREAL", "secret_access_key": "s3cr3t-value"}, True),
    ({"enabled": True}, True),  # AWS with an instance role
    ({"endpoint_url": "https://rgw.provider.example", "enabled": False}, False),
]


@pytest.mark.parametrize(("values", "configured"), settings_cases)
def test_storage_is_configured_by_an_endpoint_credentials_or_explicitly(
    values: dict[str, Any], configured: bool
) -> None:
    assert StorageSettings(**values).configured is configured


def test_ensure_grant_refuses_when_not_configured(engine: Engine, server_id: uuid.UUID) -> None:
    with Session(engine) as session, pytest.raises(StorageNotConfigured):
        storage_grants.ensure_grant(session, server_id)


def test_deprovisioning_revokes_the_key_and_keeps_the_data(
    storage: Moto, engine: Engine, server_id: uuid.UUID
) -> None:
    assert _provision_storage(engine, server_id).state == JobState.succeeded
    [user] = _herd_users(storage)
    buckets = _buckets(storage)
    revoke = pipeline.Step("revoke_storage", billing_steps.revoke_storage)
    for _ in range(2):  # a second run finds nothing left to revoke
        job_id = _new_job(engine, server_id, ["revoke_storage"])
        assert _run(engine, job_id, revoke).state == JobState.succeeded
    assert _herd_users(storage) == []
    assert user not in [u["UserName"] for u in storage.admin("iam").list_users()["Users"]]
    # The buckets stay for the retention period.
    assert _buckets(storage) == buckets
