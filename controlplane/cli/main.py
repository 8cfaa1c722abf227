"""`herd`: run the API and workers, migrate, and bootstrap staff."""

from __future__ import annotations

import signal
import sys
from datetime import timedelta
from typing import Annotated

import typer

from controlplane.cli.billing import app as billing_app
from controlplane.cli.jobs import app as jobs_app
from controlplane.cli.playbooks import app as playbooks_app
from controlplane.cli.rollout import app as rollout_app
from controlplane.cli.rollout import release_app
from controlplane.cli.supervisor import Supervisor
from controlplane.settings import get_settings

app = typer.Typer(help="Herd: the control plane for hosted Mastodon.", no_args_is_help=True)
staff_app = typer.Typer(help="Hosting staff accounts.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
app.add_typer(jobs_app, name="jobs")
app.add_typer(billing_app, name="billing")
app.add_typer(rollout_app, name="rollout")
app.add_typer(release_app, name="release")
app.add_typer(playbooks_app, name="playbooks")


@app.command()
def migrate(
    check: Annotated[bool, typer.Option(help="Only verify models and migrations agree.")] = False,
    downgrade: Annotated[
        str | None, typer.Option(help="Downgrade to this revision ('base' for empty).")
    ] = None,
) -> None:
    """Bring the database schema to the newest revision."""
    from controlplane import migrate as migrations

    if check:
        migrations.check()
        typer.echo("models and migrations agree")
    elif downgrade:
        migrations.downgrade(revision=downgrade)
        typer.echo(f"downgraded to {downgrade}")
    else:
        migrations.upgrade()
        typer.echo("database is at the newest revision")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads or solo.")] = "threads",
    beat: Annotated[
        bool, typer.Option(help="Also run the periodic reconciler (exactly one per deployment).")
    ] = False,
) -> None:
    """Run a Celery worker that carries out provisioning and rollouts."""
    from provisioning.celery_app import celery_app

    arguments = ["worker", f"--concurrency={concurrency}", f"--pool={pool}", "--loglevel=INFO"]
    if beat:
        settings = get_settings()
        arguments += ["--beat", f"--schedule={settings.data_dir / 'beat-schedule'}"]
    celery_app.worker_main(arguments)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (HERD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (HERD_PORT).")] = None,
    with_worker: Annotated[bool, typer.Option(help="Also run a worker process.")] = True,
) -> None:
    """Run the API and web pages, with a worker beside them: the whole of
    Herd on one machine. Migrates the database first."""
    import uvicorn

    from controlplane import migrate as migrations
    from controlplane.crypto import load_or_create_secret_key

    settings = get_settings()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    load_or_create_secret_key(settings)
    migrations.upgrade()
    # Restarted whenever it exits, since nothing else on this machine would
    # (see controlplane/cli/supervisor.py).
    worker: Supervisor | None = None
    if with_worker:
        # The worker inherits this process's environment (HERD_* settings).
        worker = Supervisor([sys.executable, "-m", "controlplane.cli.main", "worker", "--beat"])
        worker.start()
    # uvicorn stops on SIGTERM and then raises it again with the handler it
    # found; with Python's default that would end this process before the
    # `finally` below, leaving the worker running. Ending as SystemExit runs it.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(
            "controlplane.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            proxy_headers=True,
        )
    finally:
        if worker is not None:
            worker.stop()


def _exit_on_signal(signum: int, _frame: object) -> None:
    # Asked to stop is a clean stop (exit status 0, as service managers expect).
    raise SystemExit(0)


@staff_app.command("create")
def staff_create(
    email: Annotated[str, typer.Option(help="The staff member's email address.")],
    role: Annotated[str, typer.Option(help="operator or admin")] = "operator",
    name: Annotated[str, typer.Option()] = "",
    token_days: Annotated[int, typer.Option(min=1, max=366)] = 30,
) -> None:
    """Create (or promote) a staff member and print a first API token."""
    from pydantic import TypeAdapter, ValidationError

    from controlplane import migrate as migrations
    from controlplane.auth.roles import Scope, StaffRole
    from controlplane.db import get_engine, unit_of_work
    from controlplane.schemas import Email
    from controlplane.tenancy.service import find_or_create_user
    from controlplane.tokens import service as tokens

    try:
        staff_role = StaffRole(role)
        address = TypeAdapter(Email).validate_python(email)
    except (ValueError, ValidationError) as exc:
        raise typer.BadParameter(str(exc).splitlines()[0]) from exc
    if not migrations.is_current(get_engine()):
        raise typer.BadParameter("the database is not migrated; run `herd migrate` first")
    with unit_of_work() as session:
        from controlplane.audit import service as audit

        user = find_or_create_user(session, address, name)
        user.staff_role = staff_role
        session.add(user)
        _, plaintext = tokens.issue(
            session,
            user,
            "cli bootstrap",
            {Scope.read, Scope.write, Scope.staff},
            timedelta(days=token_days),
        )
        audit.record(
            session,
            None,
            "staff.grant",
            "user",
            user.id,
            None,
            {"role": staff_role.value},
            actor_label="herd staff create",
        )
    typer.echo(f"staff {address} is {staff_role.value}")
    typer.echo(f"API token (shown once, valid {token_days} days): {plaintext}")


if __name__ == "__main__":
    app()
