"""Keeping Herd's copy of the staffed servers' reports: the webhook secret,
webhook deliveries, the periodic pull, and the one upsert both go through.

Webhooks and pulls may deliver the same report, in any order and more than
once. A webhook's copy only replaces the stored one when Mastodon's
`updated_at` on it is newer, so a late (retried) delivery never undoes a
later change. What Herd reads from the server itself (a pull, the answer to
an action) is the server's state of that moment: it also wins a tie, since
two changes can carry the same stamp.

How the webhook gets onto a server: the `moderators` job (part of staffing)
registers, on the Mastodon server, a webhook for `report.created` and
`report.updated` pointing at `POST /api/v1/moderation/webhooks/{server_id}`
with the secret `webhook_secret()` returns (Mastodon keeps a given
`Webhook#secret` instead of generating one). Until it is registered the
periodic pull still fills the queue, only later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controlplane.crypto import secret_box
from controlplane.fleet.models import Host
from controlplane.moderation import access
from controlplane.moderation.mastodon_admin import AdminApiError, AdminReport, MastodonAdmin
from controlplane.moderation.reports import ModerationFeed, ModerationReport
from controlplane.problems import HerdError, NotFound
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "x-hub-signature"
# Where Mastodon delivers report webhooks (+ the server's id). The route, the
# signature middleware's raw-body paths and the URL the `moderators` job
# registers on a server all read this one value.
WEBHOOK_PATH_PREFIX = "/api/v1/moderation/webhooks/"
REPORT_EVENTS = frozenset({"report.created", "report.updated"})


class BadSignature(HerdError):
    status, kind, title = 400, "bad-signature", "Webhook signature not valid"


class BadDelivery(HerdError):
    status, kind, title = 400, "bad-event", "Not a Mastodon report event"


# -- the webhook secret --------------------------------------------------------------


def webhook_secret(session: Session, server_id: uuid.UUID) -> str:
    """The secret the server's Mastodon signs its webhook deliveries with,
    made on first use and kept encrypted (for the job that registers the
    webhook on the server, and for operators)."""
    feed = session.get(ModerationFeed, server_id)
    if feed is None:
        if session.get(Server, server_id) is None:
            raise NotFound("server not found")
        feed = ModerationFeed(
            server_id=server_id,
            webhook_secret_encrypted=secret_box().encrypt(secrets.token_hex(32)),
        )
        try:
            with session.begin_nested():
                session.add(feed)
        except IntegrityError:
            # Made at the same moment by someone else: theirs is the secret.
            feed = session.get(ModerationFeed, server_id)
            assert feed is not None
    return secret_box().decrypt(feed.webhook_secret_encrypted)


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature Mastodon sends with a delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- storing a copy ------------------------------------------------------------------


def upsert(
    session: Session,
    server_id: uuid.UUID,
    report: AdminReport,
    now: datetime | None = None,
    *,
    authoritative: bool = False,
) -> ModerationReport:
    """Store `report` unless the stored copy is as new or newer (by Mastodon's
    updated_at); `authoritative` for a copy Herd just read from the server,
    which wins a tie."""
    now = now or utcnow()
    row = _stored(session, server_id, report.id)
    if row is None:
        row = ModerationReport(
            server_id=server_id,
            remote_id=report.id,
            target_account_id=report.target.id,
            target_acct=report.target.acct,
            created_at=report.created_at,
            updated_at=report.updated_at,
            first_seen_at=now,
        )
        _apply(row, report, now)
        try:
            # A savepoint: a webhook and a pull inserting the same report at
            # once end as one row updated twice, not as a 500.
            with session.begin_nested():
                session.add(row)
            return row
        except IntegrityError:
            row = _stored(session, server_id, report.id)
            assert row is not None
    newer = report.updated_at > row.updated_at
    if newer or (authoritative and report.updated_at >= row.updated_at):
        _apply(row, report, now)
        session.add(row)
    return row


def _stored(session: Session, server_id: uuid.UUID, remote_id: str) -> ModerationReport | None:
    # Locked (PostgreSQL) until the caller commits: a webhook and a pull
    # comparing against the same stored copy would otherwise both win.
    return session.exec(
        select(ModerationReport)
        .where(ModerationReport.server_id == server_id, ModerationReport.remote_id == remote_id)
        .with_for_update()
    ).first()


def _apply(row: ModerationReport, report: AdminReport, now: datetime) -> None:
    row.category = report.category
    row.comment = report.comment
    row.forwarded = report.forwarded
    row.target_account_id, row.target_acct = report.target.id, report.target.acct
    row.reporter_account_id = report.reporter.id if report.reporter else None
    row.reporter_acct = report.reporter.acct if report.reporter else None
    row.assigned_account_id = report.assigned.id if report.assigned else None
    row.assigned_acct = report.assigned.acct if report.assigned else None
    row.created_at, row.updated_at = report.created_at, report.updated_at
    row.action_taken, row.action_taken_at = report.action_taken, report.action_taken_at
    row.synced_at = now
    if row.first_action_at is None and (report.action_taken or report.assigned is not None):
        # When Herd first saw someone act; Mastodon's own stamp of the
        # resolution when that is earlier, so a late pull does not make the
        # moderators look slower than they were.
        acted = report.action_taken_at if report.action_taken else None
        row.first_action_at = min(now, acted) if acted else now


# -- webhook deliveries --------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    event: str
    stored: ModerationReport | None


def delivery_secret(session: Session, server_id: uuid.UUID) -> str:
    """The secret to check a delivery with; 404 for a server Herd never made
    one for (so never told to send webhooks), before the body is read."""
    feed = session.get(ModerationFeed, server_id)
    if feed is None:
        raise NotFound("no webhook is registered for this server")
    return secret_box().decrypt(feed.webhook_secret_encrypted)


def receive(
    session: Session, server_id: uuid.UUID, secret: str, body: bytes, signature: str | None
) -> Delivery:
    """Verify a delivery and store the report it carries. Other events
    (a webhook may be registered for more) are acknowledged and dropped."""
    if not signature or not hmac.compare_digest(sign(body, secret), signature.strip()):
        raise BadSignature("the X-Hub-Signature does not match the body and this server's secret")
    try:
        event = json.loads(body)
    except ValueError:
        raise BadDelivery("the body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise BadDelivery("the body is not a webhook event (event, created_at, object)")
    if event["event"] not in REPORT_EVENTS:
        return Delivery(event["event"], None)
    try:
        report = AdminReport.parse(event.get("object"))
    except ValueError as exc:
        raise BadDelivery(f"the event's object is not a report: {exc}") from None
    return Delivery(event["event"], upsert(session, server_id, report))


# -- pulling -------------------------------------------------------------------------


@dataclass
class PullSummary:
    servers: int = 0
    reports: int = 0
    failed: dict[uuid.UUID, str] = field(default_factory=dict)


def client_for(session: Session, server: Server, token: str) -> MastodonAdmin:
    """The admin API of `server`: through its public address, or straight
    to its web process on the host where settings say so (test hosts,
    private networks), like the health gate."""
    from provisioning.health import base_url

    settings = get_settings()
    host = session.get(Host, server.host_id) if server.host_id else None
    if settings.health_check == "direct" and (host is None or server.slot is None):
        raise AdminApiError("the server is not placed on a host yet")
    url = base_url(server, host) if host is not None else f"https://{server.domain}"
    direct = settings.health_check == "direct"
    return MastodonAdmin(
        url, token, host=server.domain if direct else None, timeout=settings.health_timeout_seconds
    )


def pull_server(session: Session, server_id: uuid.UUID, now: datetime | None = None) -> int:
    """Bring one server's open reports in; returns how many it has. A failure
    is recorded on the server's feed (and raised as AdminApiError)."""
    now = now or utcnow()
    server = session.get(Server, server_id)
    if server is None:
        raise NotFound("server not found")
    webhook_secret(session, server_id)  # the feed row, to record the pull on
    feed = session.get(ModerationFeed, server_id)
    assert feed is not None
    feed.last_pull_at = now
    try:
        token = access.server_token(session, server_id)
        if token is None:
            raise AdminApiError("no moderator of this server has a working token")
        with client_for(session, server, token) as api:
            seen: set[str] = set()
            for report in api.open_reports():
                upsert(session, server_id, report, now, authoritative=True)
                seen.add(report.id)
            _refresh_vanished(session, api, server_id, seen, now)
    except AdminApiError as exc:
        _failed(session, feed, now, str(exc))
        raise
    feed.last_success_at, feed.failing_since, feed.last_error = now, None, None
    session.add(feed)
    return len(seen)


def _refresh_vanished(
    session: Session, api: MastodonAdmin, server_id: uuid.UUID, seen: set[str], now: datetime
) -> None:
    """Reports open here but not in the server's open list were resolved on
    the server (no webhook told us): read each to learn how and when. One
    that is gone altogether (its account deleted) leaves Herd too."""
    statement = select(ModerationReport).where(
        ModerationReport.server_id == server_id, col(ModerationReport.action_taken).is_(False)
    )
    if seen:
        statement = statement.where(col(ModerationReport.remote_id).not_in(seen))
    for row in session.exec(statement).all():
        try:
            upsert(session, server_id, api.report(row.remote_id), now, authoritative=True)
        except AdminApiError as exc:
            if exc.status != 404:
                raise
            session.delete(row)


def pull_all(engine: Engine) -> PullSummary:
    """Pull every staffed server, each in its own transaction, so one that
    cannot be reached (or fails in any way) is recorded and the others go on."""
    summary = PullSummary()
    with Session(engine) as session:
        server_ids = [server.id for server, _ in access.staffed_servers(session)]
    for server_id in server_ids:
        summary.servers += 1
        with Session(engine, expire_on_commit=False) as session:
            try:
                summary.reports += pull_server(session, server_id)
            except AdminApiError as exc:
                summary.failed[server_id] = str(exc)
            except Exception as exc:  # one server's fault stops no other
                log.exception("pulling the reports of server %s failed", server_id)
                session.rollback()
                summary.failed[server_id] = f"{type(exc).__name__}: {exc}"
                _record_failure(session, server_id, summary.failed[server_id])
            session.commit()
    return summary


def _record_failure(session: Session, server_id: uuid.UUID, error: str) -> None:
    webhook_secret(session, server_id)
    feed = session.get(ModerationFeed, server_id)
    assert feed is not None
    _failed(session, feed, utcnow(), error)


def _failed(session: Session, feed: ModerationFeed, now: datetime, error: str) -> None:
    feed.last_pull_at = now
    # Since the first failure after the last success: what "not reachable
    # since …" in the queue means.
    feed.failing_since = feed.failing_since or now
    feed.last_error = error[:500]
    session.add(feed)
