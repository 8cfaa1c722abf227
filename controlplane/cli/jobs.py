"""`herd jobs`: follow provisioning and other jobs from a terminal."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from controlplane.cli.client import ApiClient

app = typer.Typer(help="Jobs: provisioning, upgrades, host launches.", no_args_is_help=True)
FINISHED = {"succeeded", "failed", "cancelled"}
STATUS_STYLE = {"failed": "red", "unreachable": "red", "changed": "yellow", "ok": "green"}


@app.command("watch")
def watch(
    job_id: str,
    url: Annotated[str | None, typer.Option(help="Herd's base URL (HERD_API_URL).")] = None,
    token: Annotated[str | None, typer.Option(help="API token (HERD_API_TOKEN).")] = None,
    interval: Annotated[float, typer.Option(min=0.1)] = 1.0,
) -> None:
    """Show a job's steps as a progress bar and its Ansible tasks as they
    happen, until it ends. Exits 1 if the job fails."""
    client = ApiClient(url, token)
    console = Console()
    cursor: str | None = None
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("starting", total=None)
            while True:
                job = client.get(f"/jobs/{job_id}")
                steps = job["steps"]
                done = sum(1 for s in steps if s["state"] == "done")
                current = next((s["name"] for s in steps if s["state"] != "done"), "finished")
                progress.update(
                    bar,
                    total=len(steps),
                    completed=done,
                    description=f"{job['kind']} [{job['state']}] {current}",
                )
                page = client.get(
                    f"/jobs/{job_id}/events", **({"cursor": cursor} if cursor else {})
                )
                for event in page["items"]:
                    style = STATUS_STYLE.get(event["status"], "white")
                    progress.console.print(
                        f"[{style}]{event['status']:>11}[/] {event['host'] or '-'}: {event['task']}"
                    )
                if page["items"] and page["next_cursor"] is None:
                    cursor = _cursor_after(page)
                elif page["next_cursor"]:
                    cursor = page["next_cursor"]
                    continue
                if job["state"] in FINISHED:
                    break
                time.sleep(interval)
    finally:
        client.close()
    if job["state"] != "succeeded":
        console.print(f"[red]{job['state']}[/]: {job.get('error') or ''}")
        raise typer.Exit(1)
    console.print(f"[green]{job['kind']} succeeded[/]")


def _cursor_after(page: dict) -> str:
    from uuid import UUID

    from controlplane.pagination import encode_cursor

    return encode_cursor(UUID(page["items"][-1]["id"]))
