"""The `backups` job: list the backups on a server's host.

playbooks/backups.yml only reads (manifests, file sizes); its report
becomes the step's result, which controlplane.backups serves. Only the
server's layout is passed to the host: listing needs no secret.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controlplane.backups.report import HostBackup, parse_report
from controlplane.backups.service import BACKUPS_JOB, LIST_STEP
from controlplane.fleet.placement import Slot
from controlplane.settings import get_settings
from provisioning.ansible import TaskEvent
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry
from provisioning.steps.runs import host_of, run_on_host, server_of

PLAYBOOK = "backups.yml"


def list_backups(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        host = host_of(session, server)
        assert server.slot is not None  # host_of refuses a server without one
        user = Slot.on(host, server.slot).unix_user
    # Fleet-wide role variables first (a provider may move the folders),
    # then the server's own layout, as server_variables gives it.
    variables = {
        **get_settings().playbook_vars,
        "mastodon_user": user,
        "mastodon_home": f"/home/{user}",
    }
    found: list[HostBackup] | None = None

    def keep_report(event: TaskEvent) -> TaskEvent:
        nonlocal found
        report = parse_report(event.result)
        if report is None:
            return event
        found = report
        # The list is the step's result; the task log keeps a count.
        return replace(event, result={"backups": len(report)})

    result = run_on_host(context, PLAYBOOK, host, variables, keep_report)
    if not result.succeeded:
        message = f"{PLAYBOOK} {result.status} (rc {result.rc}) on {host.name}"
        if any(summary.unreachable for summary in result.hosts.values()):
            raise StepRetry(message)  # the host may come back
        raise StepFailed(message)
    if found is None:
        raise StepFailed(f"{PLAYBOOK} ran but printed no report")
    return {"host": host.name, "backups": [backup.to_json() for backup in found]}


BACKUPS = Pipeline(
    BACKUPS_JOB,
    (Step(LIST_STEP, list_backups, attempts=3, backoff_seconds=10),),
)
