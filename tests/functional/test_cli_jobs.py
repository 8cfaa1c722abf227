"""`herd jobs watch` against a real Herd over HTTP."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from typer.testing import CliRunner

from controlplane.cli.main import app
from controlplane.jobs.models import Job, JobState
from tests.factories import World


def _watch(live_server: str, world: World, job_key: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["jobs", "watch", str(world.ids[job_key]), "--interval", "0.1"],
        env={
            "HERD_API_URL": live_server,
            "HERD_API_TOKEN": world.tokens["viewer"],
            "COLUMNS": "120",
        },
    )
    return result.exit_code, result.output


def test_watch_shows_the_tasks_and_ends_with_the_outcome(live_server: str, world: World) -> None:
    code, output = _watch(live_server, world, "finished_job")
    assert code == 0, output
    assert "h1: Install" in output
    assert "provision succeeded" in output


def test_watch_exits_1_on_a_failed_job(live_server: str, world: World, engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(
            update(Job)
            .where(col(Job.id) == world.ids["job"])
            .values(state=JobState.failed, error="run_provision: unreachable")
        )
        session.commit()
    code, output = _watch(live_server, world, "job")
    assert code == 1
    assert "run_provision: unreachable" in output


def test_watch_refuses_another_tenants_job(live_server: str, world: World) -> None:
    result = CliRunner().invoke(
        app,
        ["jobs", "watch", str(world.ids["job"])],
        env={"HERD_API_URL": live_server, "HERD_API_TOKEN": world.tokens["outsider"]},
    )
    assert result.exit_code == 1
    assert "404" in result.output
