"""`herd rollout` and `herd release`: patch the fleet from a terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from controlplane.cli.client import ApiClient

app = typer.Typer(help="Rollouts: a release across the fleet in waves.", no_args_is_help=True)
release_app = typer.Typer(help="The release catalogue.", no_args_is_help=True)
FINISHED = {"completed", "halted", "aborted"}
STYLE = {"succeeded": "green", "failed": "red", "running": "yellow", "skipped": "dim"}

Url = Annotated[str | None, typer.Option(help="Herd's base URL (HERD_API_URL).")]
Token = Annotated[str | None, typer.Option(help="API token (HERD_API_TOKEN).")]


def _spec(
    target: str,
    waves: str,
    budget: str,
    concurrency: int,
    soak: int,
    urgent: bool,
    notice: int,
    organisation: list[str] | None,
    series: list[str] | None,
    plan: list[str] | None,
    server: list[str] | None,
    label: list[str] | None,
) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    if organisation:
        selector["organisations"] = organisation
    if series:
        selector["series"] = series
    if plan:
        selector["plans"] = plan
    if server:
        selector["servers"] = server
    if label:
        selector["labels"] = dict(item.split("=", 1) for item in label)
    if not selector:
        selector["all"] = True
    return {
        "target": target,
        "selector": selector,
        # "1,5%,25%,100%" → [1, "5%", "25%", "100%"]
        "waves": [int(w) if w.strip().isdigit() else w.strip() for w in waves.split(",")],
        "failure_budget": int(budget) if budget.isdigit() else budget,
        "concurrency": concurrency,
        "soak_seconds": soak,
        "urgent": urgent,
        "notice_seconds": notice,
    }


Target = Annotated[str, typer.Argument(help="Release tag, such as v4.5.2")]
Waves = Annotated[str, typer.Option(help="Comma-separated, like Ansible's serial")]
Budget = Annotated[str, typer.Option(help="Failures tolerated: a count or a percentage")]
Many = Annotated[list[str] | None, typer.Option()]


@app.command("plan")
def plan(
    target: Target,
    waves: Waves = "1,25%,100%",
    budget: Budget = "0",
    concurrency: int = 10,
    soak: int = 0,
    urgent: bool = False,
    notice: int = 0,
    organisation: Many = None,
    series: Many = None,
    plan_code: Annotated[list[str] | None, typer.Option("--plan")] = None,
    server: Many = None,
    label: Many = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Dry run: which server goes in which wave, and when."""
    spec = _spec(
        target, waves, budget, concurrency, soak, urgent, notice,
        organisation, series, plan_code, server, label,
    )  # fmt: skip
    client = ApiClient(url, token)
    try:
        result = client.post("/rollouts/plan", spec)
    finally:
        client.close()
    console = Console()
    console.print(
        f"{result['target']}: {result['to_upgrade']} server(s) in {len(result['waves'])} "
        f"wave(s), failure budget {result['failure_budget']}"
    )
    table = Table("wave", "server", "runs", "starts at (UTC)", "note")
    for item in result["servers"]:
        table.add_row(
            "-" if item["wave"] is None else str(item["wave"]),
            item["domain"],
            item["version"] or "?",
            item["starts_at"] or "",
            item["skip_reason"] or "",
        )
    console.print(table)


@app.command("start")
def start(
    target: Target,
    waves: Waves = "1,25%,100%",
    budget: Budget = "0",
    concurrency: int = 10,
    soak: int = 0,
    urgent: bool = False,
    notice: int = 0,
    organisation: Many = None,
    series: Many = None,
    plan_code: Annotated[list[str] | None, typer.Option("--plan")] = None,
    server: Many = None,
    label: Many = None,
    watch: Annotated[bool, typer.Option(help="Follow it until it ends.")] = True,
    url: Url = None,
    token: Token = None,
) -> None:
    """Start a rollout and follow it."""
    spec = _spec(
        target, waves, budget, concurrency, soak, urgent, notice,
        organisation, series, plan_code, server, label,
    )  # fmt: skip
    client = ApiClient(url, token)
    try:
        rollout = client.post("/rollouts", spec)
    finally:
        client.close()
    Console().print(f"rollout {rollout['id']} started")
    if watch:
        status(rollout["id"], follow=True, url=url, token=token)


def _table(rollout: dict[str, Any]) -> Table:
    title = (
        f"{rollout['target_version']} [{rollout['state']}] wave {rollout['current_wave']}, "
        f"failures {rollout['failures']}/{rollout['failure_budget_count']} tolerated"
    )
    if rollout.get("state_reason"):
        title += f"\n{rollout['state_reason']}"
    table = Table(title=title)
    table.add_column("wave")
    table.add_column("servers")
    table.add_column("progress")
    for wave in rollout["progress"]:
        counts = wave["counts"]
        done = sum(counts.get(s, 0) for s in ("succeeded", "failed", "skipped"))
        bar_width = 20
        filled = round(bar_width * done / wave["size"]) if wave["size"] else bar_width
        parts = " ".join(
            f"[{STYLE.get(state, 'white')}]{state} {n}[/]" for state, n in sorted(counts.items())
        )
        table.add_row(
            str(wave["index"]),
            str(wave["size"]),
            "█" * filled + "·" * (bar_width - filled) + " " + parts,
        )
    return table


@app.command("status")
def status(
    rollout_id: Annotated[str | None, typer.Argument(help="Omit to list rollouts")] = None,
    follow: Annotated[bool, typer.Option("--follow/--once")] = False,
    interval: Annotated[float, typer.Option(min=0.2)] = 2.0,
    url: Url = None,
    token: Token = None,
) -> None:
    """A rollout's waves and their progress; with --follow, live until it ends
    (exits 1 if it halts or is aborted)."""
    client = ApiClient(url, token)
    console = Console()
    try:
        if rollout_id is None:
            for item in client.get("/rollouts")["items"]:
                console.print(f"{item['id']} {item['target_version']} {item['state']}")
            return
        rollout = client.get(f"/rollouts/{rollout_id}")
        if not follow:
            console.print(_table(rollout))
        else:
            with Live(_table(rollout), console=console, refresh_per_second=4) as live:
                while rollout["state"] not in FINISHED:
                    time.sleep(interval)
                    rollout = client.get(f"/rollouts/{rollout_id}")
                    live.update(_table(rollout))
    finally:
        client.close()
    if follow and rollout["state"] != "completed":
        raise typer.Exit(1)


def _steer(action: str, rollout_id: str, url: str | None, token: str | None) -> None:
    client = ApiClient(url, token)
    try:
        rollout = client.post(f"/rollouts/{rollout_id}/{action}")
    finally:
        client.close()
    Console().print(f"rollout {rollout['id']}: {rollout['state']}")


@app.command("pause")
def pause(rollout_id: str, url: Url = None, token: Token = None) -> None:
    """Start no more servers; running upgrades finish."""
    _steer("pause", rollout_id, url, token)


@app.command("resume")
def resume(rollout_id: str, url: Url = None, token: Token = None) -> None:
    """Carry on with a paused rollout."""
    _steer("resume", rollout_id, url, token)


@app.command("abort")
def abort(rollout_id: str, url: Url = None, token: Token = None) -> None:
    """Stop a rollout for good."""
    _steer("abort", rollout_id, url, token)


@release_app.command("add")
def add_release(
    tag: str,
    security: bool = False,
    released_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    notes: str = "",
    url: Url = None,
    token: Token = None,
) -> None:
    """Publish a release to the catalogue."""
    client = ApiClient(url, token)
    try:
        body = {"tag": tag, "security": security, "released_on": released_on, "notes": notes}
        row = client.post("/releases", body)
    finally:
        client.close()
    Console().print(f"{row['tag']} (series {row['series']}) added")


@release_app.command("import")
def import_releases(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    url: Url = None,
    token: Token = None,
) -> None:
    """Import a JSON file: {"series": [{"series": "4.4", "end_of_support": "2026-…"}],
    "releases": [{"tag": "v4.5.2", "security": true, …}]}."""
    client = ApiClient(url, token)
    try:
        result = client.post("/releases/import", json.loads(path.read_text()))
    finally:
        client.close()
    Console().print(
        f"{len(result['created'])} release(s) added, {len(result['unchanged'])} already known"
    )


@release_app.command("list")
def list_releases(url: Url = None, token: Token = None) -> None:
    """The catalogue, newest first."""
    client = ApiClient(url, token)
    try:
        rows = client.get("/releases")
    finally:
        client.close()
    table = Table("tag", "series", "security", "supported until")
    for row in rows:
        table.add_row(
            row["tag"], row["series"], "yes" if row["security"] else "", row["end_of_support"] or ""
        )
    Console().print(table)
