"""The `moderators` job: bring a server's moderator access to what Herd
wants (controlplane/moderation/sync.py): plan the access rows, then run
playbooks/moderators.yml and confirm on the rows what the run did."""

from __future__ import annotations

from typing import Any

from controlplane.moderation import sync
from controlplane.servers import secrets as server_secrets
from provisioning.ansible import TaskEvent
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry
from provisioning.steps.runs import host_of, run_on_host, server_of
from provisioning.variables import server_variables

PLAYBOOK = "moderators.yml"
# The key of the report the role's last task prints (its `msg`).
REPORT = "herd_moderators"


def plan_access(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        changes = sync.plan_access(session, server)
        session.commit()
    return changes


def apply_access(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        if server.host_id is None or server.slot is None:
            # Never placed: no Mastodon to give anyone access to, nor to take
            # it from; whatever Herd holds is simply dropped.
            variables, sent = sync.playbook_input(session, server)
            done = sync.confirm(session, sent, {}, variables["mastodon_moderators_revoke"])
            session.commit()
            return {"skipped": "the server is not placed on a host", **done}
        host = host_of(session, server)
        variables = server_variables(server, host, server_secrets.ensure(session, server.id))
        access, sent = sync.playbook_input(session, server)
        variables.update(access)
        session.commit()
    if not sent:
        return {"moderators": 0}

    report: dict[str, Any] = {}

    def keep_report(event: TaskEvent) -> TaskEvent:
        msg = event.result.get("msg")
        if isinstance(msg, dict) and isinstance(msg.get(REPORT), dict):
            report.update(msg[REPORT])
        return event

    result = run_on_host(context, PLAYBOOK, host, variables, keep_report)
    if not result.succeeded:
        message = f"{PLAYBOOK} {result.status} (rc {result.rc}) on {host.name}"
        if any(s.unreachable for s in result.hosts.values()) or context.attempt < 2:
            raise StepRetry(message)
        raise StepFailed(message)
    # A list of {username, account_id}, not a mapping by user name: a name
    # such as "token_bob" would look like a secret's key to the redactor.
    granted = {
        str(item.get("username")): str(item.get("account_id") or "")
        for item in report.get("granted") or []
        if isinstance(item, dict)
    }
    revoked = [str(name) for name in report.get("revoked") or []]
    with context.session() as session:
        done = sync.confirm(session, sent, granted, revoked)
        session.commit()
    return {"host": host.name, **done}


MODERATORS = Pipeline(
    sync.MODERATORS_JOB,
    (
        Step("plan_access", plan_access, attempts=3, backoff_seconds=5),
        Step("apply_access", apply_access, attempts=3, backoff_seconds=20),
    ),
)
