"""Issuing, authenticating and revoking API tokens.

A token reads `herd_<lookup>_<secret>`. The lookup part finds the row through
a unique index; the secret part is compared by digest in constant time.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import OrgRole, Perm, Scope, StaffRole
from controlplane.crypto import digest, digest_matches
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import Forbidden, InvalidInput, NotFound, Unauthenticated
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Membership, User
from controlplane.tokens.models import ApiToken

TOKEN_PATTERN = re.compile(r"^herd_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
# Recording every use would turn each read into a write; a minute is precise
# enough to tell a live token from a forgotten one.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _new_token_parts() -> tuple[str, str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    lookup = "".join(secrets.choice(alphabet) for _ in range(12))
    return lookup, secrets.token_urlsafe(32)


def issue(
    session: Session,
    user: User,
    name: str,
    scopes: set[Scope],
    lifetime: timedelta,
    organisation_id: uuid.UUID | None = None,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its one-time plaintext."""
    lookup, secret = _new_token_parts()
    plaintext = f"herd_{lookup}_{secret}"
    token = ApiToken(
        user_id=user.id,
        organisation_id=organisation_id,
        name=name,
        lookup=lookup,
        secret_digest=digest(plaintext),
        scopes=sorted(s.value for s in scopes),
        expires_at=utcnow() + lifetime,
    )
    session.add(token)
    return token, plaintext


def create_for_caller(
    session: Session,
    principal: Principal,
    name: str,
    scopes: set[Scope],
    lifetime: timedelta,
    organisation_id: uuid.UUID | None,
) -> tuple[ApiToken, str]:
    # A token can only mint tokens weaker than or equal to itself.
    if not scopes <= principal.scopes:
        missing = ", ".join(sorted(s.value for s in scopes - principal.scopes))
        raise Forbidden(f"a token cannot grant scopes it does not hold: {missing}")
    if Scope.staff in scopes and organisation_id is not None:
        raise InvalidInput("a staff token cannot be bound to one organisation")
    bound = principal.bound_organisation_id
    if bound is not None and organisation_id != bound:
        raise Forbidden("this token is bound to one organisation and can only mint tokens for it")
    if organisation_id is not None and organisation_id not in principal.memberships:
        raise NotFound("organisation not found")
    user = session.get(User, principal.user_id)
    assert user is not None
    token, plaintext = issue(session, user, name, scopes, lifetime, organisation_id)
    audit.record(
        session,
        principal,
        "token.create",
        "api_token",
        token.id,
        organisation_id,
        {"name": name, "scopes": token.scopes, "expires_at": token.expires_at.isoformat()},
    )
    return token, plaintext


def list_for_caller(
    session: Session, principal: Principal, page: PageRequest
) -> tuple[list[ApiToken], str | None]:
    statement = select(ApiToken).where(ApiToken.user_id == principal.user_id)
    rows = session.exec(paginate(statement, ApiToken.id, page)).all()
    return finish_page(rows, page, lambda token: token.id)


def list_for_organisation(
    session: Session, principal: Principal, organisation_id: uuid.UUID, page: PageRequest
) -> tuple[list[ApiToken], str | None]:
    """Tokens bound to an organisation, for its admins to review and revoke
    when someone leaves."""
    principal.require(organisation_id, Perm.tokens_audit)
    statement = select(ApiToken).where(ApiToken.organisation_id == organisation_id)
    rows = session.exec(paginate(statement, ApiToken.id, page)).all()
    return finish_page(rows, page, lambda token: token.id)


def revoke(session: Session, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("token not found")
    own = token.user_id == principal.user_id
    if not own:
        if token.organisation_id is None or not principal.can_see(token.organisation_id):
            raise NotFound("token not found")
        principal.require(token.organisation_id, Perm.tokens_audit)
        if Perm.members_manage not in principal.org_perms(token.organisation_id):
            raise Forbidden("revoking another member's token needs members.manage")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit.record(
            session,
            principal,
            "token.revoke",
            "api_token",
            token.id,
            token.organisation_id,
            {"name": token.name},
        )
    return token


def authenticate(session: Session, presented: str, now: datetime | None = None) -> Principal:
    """The principal behind a bearer token, in at most three statements:
    the token with its user, the memberships, and now and then last_used_at."""
    now = now or utcnow()
    match = TOKEN_PATTERN.match(presented)
    if match is None:
        raise Unauthenticated("the bearer token is malformed")
    row = session.exec(
        select(ApiToken, User)
        .join(User, col(User.id) == ApiToken.user_id)
        .where(ApiToken.lookup == match.group(1))
    ).first()
    if row is None:
        raise Unauthenticated("the token is not valid")
    token, user = row
    if not digest_matches(presented, token.secret_digest):
        raise Unauthenticated("the token is not valid")
    if token.revoked_at is not None:
        raise Unauthenticated("the token has been revoked")
    if token.expires_at <= now:
        raise Unauthenticated("the token has expired")
    if not user.is_active:
        raise Unauthenticated("the account is disabled")

    membership_query = select(Membership.organisation_id, Membership.role).where(
        Membership.user_id == user.id
    )
    if token.organisation_id is not None:
        membership_query = membership_query.where(
            Membership.organisation_id == token.organisation_id
        )
    memberships = {org: OrgRole(role) for org, role in session.exec(membership_query).all()}

    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.add(token)

    scopes = frozenset(Scope(s) for s in token.scopes if s in Scope.__members__)
    staff_role = StaffRole(user.staff_role) if user.staff_role and Scope.staff in scopes else None
    return Principal(
        user_id=user.id,
        label=user.email,
        token_id=token.id,
        scopes=scopes,
        memberships=memberships,
        staff_role=staff_role,
        bound_organisation_id=token.organisation_id,
    )
