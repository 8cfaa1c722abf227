"""Telling organisations about their servers' maintenance: an email to
their owners and admins, and an entry in their audit log. Called from the
rollout engine, which runs in a worker (never in a request)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.roles import OrgRole
from controlplane.notifications import send_mail
from controlplane.problems import HerdError
from controlplane.tenancy.models import Membership, Organisation, User

log = logging.getLogger(__name__)


def recipients(session: Session, org_id: uuid.UUID) -> list[str]:
    rows = session.exec(
        select(User.email)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(
            Membership.organisation_id == org_id,
            col(Membership.role).in_([OrgRole.owner, OrgRole.admin]),
            User.is_active == True,  # noqa: E712 - SQL comparison
        )
    ).all()
    org = session.get(Organisation, org_id)
    extra = [org.billing_email] if org and org.billing_email else []
    return sorted(set(rows) | set(extra))


def tell(
    session: Session,
    org_id: uuid.UUID,
    rollout_id: uuid.UUID,
    action: str,
    subject: str,
    lines: Sequence[str],
    details: dict[str, object],
    key: str = "",
) -> None:
    """Record the audit event and send the mail. A mail server that is down
    or not configured is logged, not fatal: the audit entry is the record,
    and holding a security patch back for an email would be worse."""
    audit.record(
        session, None, action, "rollout", rollout_id, org_id, details, actor_label="rollout"
    )
    to = recipients(session, org_id)
    if not to:
        return
    body = "\n".join([*lines, "", "— Herd, on behalf of your hosting provider"]) + "\n"
    try:
        send_mail(to, subject, body, message_id=f"<{action}.{rollout_id}.{key or org_id}@herd>")
    except (HerdError, OSError) as exc:
        log.warning("could not email %s about rollout %s: %s", org_id, rollout_id, exc)
