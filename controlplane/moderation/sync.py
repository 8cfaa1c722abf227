"""Moderator access as desired state, and the `moderators` job that brings a
server to it.

Who should moderate a server follows from Herd's records alone: the members
of the team assigned to it, while its moderation add-on is in force and the
server is not being removed. The job's first step reads that and updates
the server's `ModeratorAccess` rows (new moderators get a token Herd
generates, leavers are marked for revocation); its second runs
playbooks/moderators.yml with every live row and confirms on the rows what
the run did. A job started for any reason therefore does the right thing
for the newest state, and a run repeated after a crash changes nothing.

`settle_all`, a periodic task, starts a job for every active server whose
access is not yet what is wanted, with none under way: after a job that
failed (an unreachable host), a server placed after its team was assigned,
a staff member who lost their staff role. Failed jobs in a row space the
next try out, so a host down for a day gets a handful of jobs, not hundreds.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.billing.addons import moderation_active
from controlplane.crypto import secret_box
from controlplane.jobs import service as jobs
from controlplane.jobs.models import FINISHED, Job, JobState
from controlplane.moderation.models import (
    AccessState,
    Assignment,
    ModeratorAccess,
    TeamMember,
)
from controlplane.moderation.queue import WEBHOOK_PATH_PREFIX, webhook_secret
from controlplane.moderation.reports import ModerationFeed
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import User

MODERATORS_JOB = "moderators"
# What moderation needs through the admin API: reports, actions on accounts,
# domain blocks. Nothing else (no admin:read, no user data scopes).
SCOPES = (
    "admin:read:reports",
    "admin:write:reports",
    "admin:read:accounts",
    "admin:write:accounts",
    "admin:read:domain_blocks",
    "admin:write:domain_blocks",
)
# Rows whose token should work on the server (or soon will).
LIVE = (AccessState.pending, AccessState.granted)
_REMOVED = frozenset({ServerState.deprovisioning, ServerState.deleted})
# The wait before a try after failed jobs: this, doubled for each failure in
# a row, up to RETRY_CAP.
RETRY_AFTER = timedelta(minutes=5)
RETRY_CAP = timedelta(hours=6)
# Marks the jobs settle_all started, for its back-off.
SETTLE_PARAM = "settle"


@dataclass(frozen=True)
class Wanted:
    user_id: uuid.UUID
    email: str


def request_sync(
    session: Session, server_id: uuid.UUID, params: dict[str, Any] | None = None
) -> Job:
    """A `moderators` job for the server, sent once the caller commits. A job
    not yet picked up will read the newest state when it runs, so it serves;
    one already running may have read the state before this change."""
    waiting = session.exec(
        select(Job).where(
            Job.server_id == server_id,
            Job.kind == MODERATORS_JOB,
            Job.state == JobState.pending,
            Job.runs == 0,
        )
    ).first()
    if waiting is not None:
        return waiting
    from provisioning.registry import pipelines

    return jobs.create_job(
        session, MODERATORS_JOB, pipelines()[MODERATORS_JOB].step_names, server_id, params
    )


def wanted(session: Session, server: Server) -> dict[str, Wanted]:
    """The Mastodon user names that should moderate the server now."""
    assignment = session.get(Assignment, server.id)
    if assignment is None or server.state in _REMOVED or not moderation_active(session, server.id):
        return {}
    rows = session.exec(
        select(TeamMember.mastodon_username, User.id, User.email)
        .join(User, col(User.id) == TeamMember.user_id)
        .where(
            TeamMember.team_id == assignment.team_id,
            col(User.is_active),
            # Someone who left the staff moderates nowhere, team or not.
            col(User.staff_role).is_not(None),
        )
    ).all()
    return {username: Wanted(user_id, email) for username, user_id, email in rows}


def plan_access(session: Session, server: Server) -> dict[str, list[str]]:
    """Bring the server's access rows to what is wanted: a new token for
    each moderator without a live one, revocation for everyone else. The
    caller commits."""
    want = wanted(session, server)
    rows = {
        row.mastodon_username: row
        for row in session.exec(
            select(ModeratorAccess).where(ModeratorAccess.server_id == server.id)
        )
    }
    now, box = utcnow(), secret_box()
    added, removed = [], []
    for username, who in want.items():
        row = rows.get(username)
        if row is None:
            row = ModeratorAccess(server_id=server.id, mastodon_username=username)
        if row.state not in LIVE or row.token_encrypted is None:
            # 256 bits, URL-safe: the shape of Doorkeeper's own tokens.
            row.token_encrypted = box.encrypt(secrets.token_urlsafe(32))
            row.state, row.granted_at, row.revoked_at = AccessState.pending, None, None
            added.append(username)
        row.user_id, row.updated_at = who.user_id, now
        session.add(row)
    for username, row in rows.items():
        if username not in want and row.state in LIVE:
            row.state, row.updated_at = AccessState.revoking, now
            session.add(row)
            removed.append(username)
    if want:
        # Made now, a step before the run that sends it to the host, so the
        # job's redactor (built as each step starts) already masks it.
        webhook_secret(session, server.id)
    return {"added": sorted(added), "removed": sorted(removed)}


@dataclass(frozen=True)
class Sent:
    """One row as a playbook run was given it, to confirm only what the run
    did: a row changed meanwhile (by a newer job) is left to that job."""

    row_id: uuid.UUID
    username: str
    state: AccessState
    token_encrypted: str | None


def playbook_input(session: Session, server: Server) -> tuple[dict[str, Any], list[Sent]]:
    rows = session.exec(
        select(ModeratorAccess, User.email)
        .join(User, col(User.id) == ModeratorAccess.user_id, isouter=True)
        .where(
            ModeratorAccess.server_id == server.id,
            col(ModeratorAccess.state).in_([*LIVE, AccessState.revoking]),
        )
        .order_by(col(ModeratorAccess.mastodon_username))
    ).all()
    box = secret_box()
    grant, revoke, sent = [], [], []
    for row, email in rows:
        sent.append(Sent(row.id, row.mastodon_username, row.state, row.token_encrypted))
        if row.state == AccessState.revoking or row.token_encrypted is None or email is None:
            revoke.append(row.mastodon_username)
        else:
            token = box.decrypt(row.token_encrypted)
            grant.append({"username": row.mastodon_username, "email": email, "token": token})
    # Reports reach Herd at once through a webhook while someone from Herd
    # moderates here; with nobody left, the webhook goes too.
    webhook: dict[str, str] = {"url": webhook_url(server.id)}
    if grant:
        webhook["secret"] = webhook_secret(session, server.id)
    variables = {
        "mastodon_moderators_grant": grant,
        "mastodon_moderators_revoke": revoke,
        "mastodon_moderators_scopes": list(SCOPES),
        "mastodon_moderators_webhook": webhook,
    }
    return variables, sent


def webhook_url(server_id: uuid.UUID) -> str:
    """Where the server's Mastodon sends its report webhooks."""
    return f"{get_settings().public_url.rstrip('/')}{WEBHOOK_PATH_PREFIX}{server_id}"


def confirm(
    session: Session, sent: list[Sent], granted: dict[str, str], revoked: list[str]
) -> dict[str, list[str]]:
    """Record what the run did: given access is granted (with the account id
    the server reported), taken access is revoked and its token deleted."""
    now = utcnow()
    done: dict[str, list[str]] = {"granted": [], "revoked": []}
    for item in sent:
        row = session.get(ModeratorAccess, item.row_id)
        if row is None or (row.state, row.token_encrypted) != (item.state, item.token_encrypted):
            continue
        if item.username in granted and row.state in LIVE:
            row.account_id = granted[item.username] or row.account_id
            if row.state == AccessState.pending:
                row.state, row.granted_at = AccessState.granted, now
            done["granted"].append(item.username)
        elif row.state == AccessState.revoking or item.username in revoked:
            # The run took the role and every token away (an account that
            # never existed had none to lose).
            row.state, row.token_encrypted, row.revoked_at = AccessState.revoked, None, now
            done["revoked"].append(item.username)
        row.updated_at = now
        session.add(row)
    return done


def moderator_secrets(session: Session, server_id: uuid.UUID) -> list[str]:
    """Every token Herd holds for the server and its webhook secret, for the
    job redactor."""
    box = secret_box()
    feed = session.get(ModerationFeed, server_id)
    webhook = [box.decrypt(feed.webhook_secret_encrypted)] if feed is not None else []
    return webhook + [
        box.decrypt(value)
        for value in session.exec(
            select(ModeratorAccess.token_encrypted).where(
                ModeratorAccess.server_id == server_id,
                col(ModeratorAccess.token_encrypted).is_not(None),
            )
        )
        if value
    ]


@dataclass(frozen=True)
class Settled:
    checked: int  # active servers with staffing or access rows
    started: list[uuid.UUID]  # servers given a job
    waiting: int  # unsettled, but a job is under way or the next try is not due


def settle_all(engine: Engine, now: datetime | None = None) -> Settled:
    """Start a `moderators` job for each active server whose access rows are
    not what is wanted and that has none under way or in its back-off.
    Each server commits on its own."""
    now = now or utcnow()
    with Session(engine) as session:
        staffed = set(session.exec(select(Assignment.server_id)).all())
        with_rows = set(
            session.exec(
                select(ModeratorAccess.server_id)
                .where(col(ModeratorAccess.state).in_([*LIVE, AccessState.revoking]))
                .distinct()
            ).all()
        )
        server_ids = sorted(
            session.exec(
                select(Server.id).where(
                    col(Server.id).in_(staffed | with_rows),
                    Server.state == ServerState.active,
                    col(Server.host_id).is_not(None),
                )
            ).all()
        )
    started, waiting = [], 0
    for server_id in server_ids:
        with Session(engine) as session:
            server = session.get(Server, server_id)
            if (
                server is None
                or server.state != ServerState.active
                or not _unsettled(session, server)
            ):
                continue
            if not _may_start(session, server_id, now):
                waiting += 1
                continue
            request_sync(session, server_id, {SETTLE_PARAM: True})
            session.commit()
            started.append(server_id)
    return Settled(len(server_ids), started, waiting)


def _unsettled(session: Session, server: Server) -> bool:
    """Whether a run is owed: a row still to confirm on the server, or the
    live rows are not the moderators wanted now."""
    rows = session.exec(
        select(ModeratorAccess.mastodon_username, ModeratorAccess.state).where(
            ModeratorAccess.server_id == server.id,
            col(ModeratorAccess.state).in_([*LIVE, AccessState.revoking]),
        )
    ).all()
    if any(state != AccessState.granted for _, state in rows):
        return True
    return {username for username, _ in rows} != set(wanted(session, server))


def _may_start(session: Session, server_id: uuid.UUID, now: datetime) -> bool:
    """No `moderators` job under way, the last one ended RETRY_AFTER ago,
    doubled for each job in a row that failed or that this loop started
    and left the server unsettled (so a run that succeeds without settling
    cannot loop either). A job staff cancelled is not overridden."""
    recent = session.exec(
        select(Job)
        .where(Job.server_id == server_id, Job.kind == MODERATORS_JOB)
        .order_by(col(Job.created_at).desc())
        .limit(12)
    ).all()
    if not recent:
        return True
    in_a_row = 0
    for job in recent:
        if job.state not in FINISHED:
            return False
        if job.state == JobState.cancelled:
            if job is recent[0]:
                return False
            break
        if job.state != JobState.failed and not job.params.get(SETTLE_PARAM):
            break
        in_a_row += 1
    wait = min(RETRY_AFTER * 2 ** max(in_a_row - 1, 0), RETRY_CAP)
    return now >= (recent[0].finished_at or recent[0].created_at) + wait
