"""What other parts of Herd (the fleet moderation queue) read of moderator
access: which servers are staffed, and a working admin API token for one.

Only granted access counts: a token still pending has not been confirmed on
the server, and one being revoked must not be used any more.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from controlplane.billing.addons import MODERATION
from controlplane.billing.models import AddOn, AddOnOrder
from controlplane.crypto import secret_box
from controlplane.moderation.models import AccessState, Assignment, ModeratorAccess
from controlplane.servers.models import Server


def server_token(
    session: Session, server_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> str | None:
    """The decrypted admin API token of `user_id`'s granted access on the
    server, or with no user, of any granted moderator there (the one granted
    first, so repeated calls pick the same account); None when there is none."""
    statement = select(ModeratorAccess).where(
        ModeratorAccess.server_id == server_id,
        ModeratorAccess.state == AccessState.granted,
        col(ModeratorAccess.token_encrypted).is_not(None),
    )
    if user_id is not None:
        statement = statement.where(ModeratorAccess.user_id == user_id)
    row = session.exec(
        statement.order_by(col(ModeratorAccess.granted_at), col(ModeratorAccess.id))
    ).first()
    if row is None or row.token_encrypted is None:
        return None
    return secret_box().decrypt(row.token_encrypted)


def staffed_servers(session: Session) -> list[tuple[Server, Assignment]]:
    """Servers with a team assigned and the moderation add-on in force, with
    their assignment (`response_minutes` is the agreed response time)."""
    # One query, with the same test as billing.addons.moderation_active: a
    # paid order, active or being cancelled (paid until its period ends).
    in_force = (
        select(AddOnOrder.server_id)
        .join(AddOn, col(AddOn.id) == AddOnOrder.addon_id)
        .where(
            AddOn.code == MODERATION,
            col(AddOnOrder.status).in_(["active", "cancelling"]),
            col(AddOnOrder.paid_at).is_not(None),
        )
    )
    rows = session.exec(
        select(Server, Assignment)
        .join(Assignment, col(Assignment.server_id) == Server.id)
        .where(col(Server.id).in_(in_force))
        .order_by(col(Server.id))
    ).all()
    return [(server, assignment) for server, assignment in rows]
