"""Who is behind a browser session, as the same Principal the API uses.

A person signs in either through the provider's OIDC identity provider or by
pasting an API token. In both cases the session keeps only ids, and every
request rebuilds the principal from the database, so a disabled account, a
revoked token or a changed role takes effect at the next click.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from controlplane.auth.principal import Principal
from controlplane.auth.roles import PERSON_SCOPES, OrgRole, Scope, StaffRole
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Membership, User
from controlplane.tokens.models import ApiToken
from web.sessions import WebSession

# A person signed in through OIDC holds PERSON_SCOPES; a staff role comes
# with the staff scope, since the person (not a script's token) is at the
# keyboard.


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def principal_for(session: Session, web: WebSession) -> Principal | None:
    """The session's principal, or None when it is anonymous or no longer
    valid (user disabled, token revoked or expired)."""
    user_id = _uuid(web.get("uid"))
    if user_id is None:
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    token_id = _uuid(web.get("tid"))
    bound: uuid.UUID | None = None
    if token_id is not None:
        token = session.get(ApiToken, token_id)
        if (
            token is None
            or token.user_id != user.id
            or token.revoked_at is not None
            or token.expires_at <= utcnow()
        ):
            return None
        scopes = frozenset(Scope(s) for s in token.scopes if s in Scope.__members__)
        bound = token.organisation_id
    else:
        scopes = PERSON_SCOPES | ({Scope.staff} if user.staff_role else set())
    query = select(Membership.organisation_id, Membership.role).where(Membership.user_id == user.id)
    if bound is not None:
        query = query.where(Membership.organisation_id == bound)
    memberships = {org: OrgRole(role) for org, role in session.exec(query).all()}
    staff_role = StaffRole(user.staff_role) if user.staff_role and Scope.staff in scopes else None
    return Principal(
        user_id=user.id,
        label=user.email,
        token_id=token_id,
        scopes=scopes,
        memberships=memberships,
        staff_role=staff_role,
        bound_organisation_id=bound,
    )
