"""Drift detection: do the files on a server's host still hold what Herd
would deploy there now?

playbooks/inspect.yml only reads: each managed file's SHA-256, owner, group
and mode, computed on the host, so no content leaves it. This step renders
the same files from the server's variables (provisioning.deployment) and
reports per file `same`, `differs` or `missing`; the result holds paths,
states and attributes, never content or a secret.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from controlplane.servers import secrets as server_secrets
from provisioning.ansible import TaskEvent
from provisioning.deployment import RenderedFile, render_files
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry
from provisioning.steps.runs import host_of, run_on_host, server_of
from provisioning.variables import deployment_variables

PLAYBOOK = "inspect.yml"
# The key of the report inspect.yml's last task prints (its `msg`).
REPORT = "herd_inspect"


@dataclass(frozen=True)
class FoundFile:
    """What inspect.yml saw at one path."""

    exists: bool
    regular: bool = False
    sha256: str = ""
    owner: str = ""
    group: str = ""
    mode: str = ""


def parse_report(result: Mapping[str, Any]) -> dict[str, FoundFile] | None:
    """The files in a task event's result, when it is inspect.yml's report."""
    msg = result.get("msg")
    report = msg.get(REPORT) if isinstance(msg, dict) else None
    if not isinstance(report, dict):
        return None
    columns = ("paths", "exists", "regular", "checksums", "owners", "groups", "modes")
    rows = zip(*(report.get(column, []) for column in columns), strict=True)
    return {
        str(path): FoundFile(
            bool(exists), bool(regular), str(sha), str(owner), str(group), str(mode)
        )
        for path, exists, regular, sha, owner, group, mode in rows
    }


def compare(files: Sequence[RenderedFile], found: Mapping[str, FoundFile]) -> dict[str, Any]:
    """Each rendered file against what the host has at its path."""
    entries: list[dict[str, Any]] = []
    for file in files:
        seen = found.get(file.path, FoundFile(exists=False))
        entry: dict[str, Any] = {"path": file.path, "template": file.template}
        if not seen.exists:
            entry["status"] = "missing"
        else:
            # A folder or a link where the file should be differs, too.
            same = seen.regular and seen.sha256 == file.sha256
            entry["status"] = "same" if same else "differs"
            # Who may read the file matters as much as what it says (a
            # world-readable .env.production), so attributes are reported as well.
            attributes = [
                f"{name} is {actual or '?'}, expected {expected}"
                for name, actual, expected in (
                    ("owner", seen.owner, file.owner),
                    ("group", seen.group, file.group),
                    ("mode", seen.mode, file.mode),
                )
                if actual != expected
            ]
            if attributes:
                entry["attributes"] = attributes
        entries.append(entry)
    counts = Counter(entry["status"] for entry in entries)
    return {
        "drifted": any(e["status"] != "same" or "attributes" in e for e in entries),
        "counts": {status: counts.get(status, 0) for status in ("same", "differs", "missing")},
        "files": entries,
    }


def inspect_files(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        host = host_of(session, server)
        stored = server_secrets.load(session, server.id)
        if stored is None:
            raise StepFailed("the server has no secrets yet, so nothing was deployed")
        files = render_files(deployment_variables(session, server, host, stored))

    found: dict[str, FoundFile] = {}

    def keep_report(event: TaskEvent) -> TaskEvent:
        report = parse_report(event.result)
        if report is None:
            return event
        found.update(report)
        # The comparison is the step's result; the task log keeps no digests.
        return replace(event, result={"files": len(report)})

    result = run_on_host(
        context, PLAYBOOK, host, {"herd_inspect_paths": [f.path for f in files]}, keep_report
    )
    if not result.succeeded:
        message = f"{PLAYBOOK} {result.status} (rc {result.rc}) on {host.name}"
        if any(summary.unreachable for summary in result.hosts.values()):
            raise StepRetry(message)  # the host may come back
        raise StepFailed(message)
    if not found and files:
        raise StepFailed(f"{PLAYBOOK} ran but reported no files")
    return {"host": host.name, **compare(files, found)}


INSPECT = Pipeline(
    "inspect",
    (Step("inspect_files", inspect_files, attempts=3, backoff_seconds=10),),
)
