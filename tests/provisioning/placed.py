"""A server placed on test host h1 with its secrets, ready for the
playbooks, as the provision pipeline leaves it after its first steps; shared
by the tests here that run real playbooks on a host. The fixture is in
conftest.py."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.jobs import service as jobs
from controlplane.jobs.models import JobState
from provisioning.pipeline import Pipeline, run_job
from provisioning.registry import redactor_for
from provisioning.steps.provision import playbook_step
from tests.conftest import POSTGRES_SERVER_URL, _psycopg_dsn

# What the test hosts lack: packages (the stand-in replaces them), a public
# name for certbot, a Redis of their own; PostgreSQL is this machine's.
PLAYBOOK_VARS = {
    "mastodon_nginx_tls_mode": "self_signed",
    "mastodon_db_host": "127.0.0.1",
    "mastodon_database_admin_host": "127.0.0.1",
}
SKIP_TAGS = ["packages", "certbot", "redis"]
# Provisioning's two playbook steps, exactly as the provision pipeline runs them.
SETUP = Pipeline("setup", (playbook_step("provision.yml"), playbook_step("brand.yml")))


@dataclass(frozen=True)
class Placed:
    server_id: uuid.UUID
    slot: int
    # Headers of a staff operator's token, and of the organisation owner's.
    operator: dict[str, str]
    owner: dict[str, str]


def drop_tenant_database(setup: Placed) -> None:
    """provision.yml made a real database and role on this machine's PostgreSQL."""
    with psycopg.connect(_psycopg_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "mastodon_{setup.server_id.hex}" WITH (FORCE)')
        # Another test's server may own a database with the same role: then it stays.
        with contextlib.suppress(psycopg.Error):
            admin.execute(f'DROP ROLE IF EXISTS "mastodon{setup.slot}"')


def run_to_success(engine: Engine, job_id: uuid.UUID, kinds: dict[str, Pipeline]) -> None:
    outcome = run_job(engine, job_id, kinds, redactor_for=redactor_for)
    assert outcome.state == JobState.succeeded, outcome.detail


def create_setup_job(engine: Engine, setup: Placed) -> uuid.UUID:
    """A job running provision.yml and brand.yml on the placed server, which
    the test then runs itself (no broker here)."""
    with Session(engine) as session:
        job = jobs.create_job(session, "setup", SETUP.step_names, setup.server_id)
        session.info.clear()
        session.commit()
        return job.id
