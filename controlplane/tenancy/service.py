"""Organisations, their members and invitations."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import PERSON_SCOPES, OrgRole, Perm, StaffPerm
from controlplane.crypto import digest
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import AlreadyExists, Conflict, Forbidden, NotFound
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Invitation, Membership, Organisation, User
from controlplane.tenancy.schemas import (
    InvitationCreate,
    OrganisationCreate,
    OrganisationUpdate,
)
from controlplane.tokens import service as tokens

NEWCOMER_TOKEN_LIFETIME = timedelta(days=30)


def find_or_create_user(session: Session, email: str, name: str = "") -> User:
    user = session.exec(select(User).where(User.email == email)).first()
    if user is None:
        user = User(email=email, name=name)
        session.add(user)
        session.flush()
    return user


def get_organisation(session: Session, principal: Principal, org_id: uuid.UUID) -> Organisation:
    principal.require(org_id, Perm.org_read)
    organisation = session.get(Organisation, org_id)
    if organisation is None:
        raise NotFound("organisation not found")
    return organisation


def list_organisations(
    session: Session, principal: Principal, page: PageRequest
) -> tuple[list[Organisation], str | None]:
    statement = select(Organisation)
    visible = principal.visible_organisation_ids()
    if visible is not None:
        statement = statement.where(col(Organisation.id).in_(visible))
    rows = session.exec(paginate(statement, Organisation.id, page)).all()
    return finish_page(rows, page, lambda org: org.id)


def create_organisation(
    session: Session, principal: Principal, data: OrganisationCreate
) -> Organisation:
    if data.owner_email is not None:
        principal.require_staff(StaffPerm.organisations_manage)
    if session.exec(select(Organisation.id).where(Organisation.slug == data.slug)).first():
        raise AlreadyExists(f"the slug '{data.slug}' is taken")
    organisation = Organisation(
        name=data.name, slug=data.slug, timezone=data.timezone, billing_email=data.billing_email
    )
    session.add(organisation)
    session.flush()
    if data.owner_email is not None:
        owner_id = find_or_create_user(session, data.owner_email).id
    else:
        owner_id = principal.user_id
    session.add(Membership(organisation_id=organisation.id, user_id=owner_id, role=OrgRole.owner))
    audit.record(
        session,
        principal,
        "organisation.create",
        "organisation",
        organisation.id,
        organisation.id,
        {"slug": organisation.slug, "owner": str(owner_id)},
    )
    return organisation


def update_organisation(
    session: Session, principal: Principal, org_id: uuid.UUID, data: OrganisationUpdate
) -> Organisation:
    principal.require(org_id, Perm.org_update)
    organisation = get_organisation(session, principal, org_id)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(organisation, field, value)
    session.add(organisation)
    audit.record(
        session,
        principal,
        "organisation.update",
        "organisation",
        org_id,
        org_id,
        {"fields": sorted(changes)},
    )
    return organisation


def list_members(
    session: Session, principal: Principal, org_id: uuid.UUID, page: PageRequest
) -> tuple[list[tuple[Membership, User]], str | None]:
    principal.require(org_id, Perm.members_read)
    statement = (
        select(Membership, User)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.organisation_id == org_id)
    )
    rows = session.exec(paginate(statement, Membership.id, page)).all()
    return finish_page(rows, page, lambda row: row[0].id)


def _membership(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    membership = session.exec(
        select(Membership).where(
            Membership.organisation_id == org_id, Membership.user_id == user_id
        )
    ).first()
    if membership is None:
        raise NotFound("member not found")
    return membership


def _owner_count(session: Session, org_id: uuid.UUID) -> int:
    return session.exec(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organisation_id == org_id, Membership.role == OrgRole.owner)
    ).one()


def _require_role_change(
    principal: Principal, org_id: uuid.UUID, before: OrgRole | None, after: OrgRole | None
) -> None:
    principal.require(org_id, Perm.members_manage)
    if OrgRole.owner in (before, after) and Perm.owners_manage not in principal.org_perms(org_id):
        raise Forbidden("only an owner can grant or take away the owner role")


def change_member_role(
    session: Session, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID, role: OrgRole
) -> tuple[Membership, User]:
    principal.require(org_id, Perm.members_read)
    membership = _membership(session, org_id, user_id)
    before = OrgRole(membership.role)
    _require_role_change(principal, org_id, before, role)
    if before == OrgRole.owner and role != OrgRole.owner and _owner_count(session, org_id) <= 1:
        raise Conflict("an organisation keeps at least one owner; make someone else owner first")
    membership.role = role
    session.add(membership)
    audit.record(
        session,
        principal,
        "member.role_change",
        "user",
        user_id,
        org_id,
        {"from": before.value, "to": role.value},
    )
    user = session.get(User, user_id)
    assert user is not None
    return membership, user


def remove_member(
    session: Session, principal: Principal, org_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    principal.require(org_id, Perm.members_read)
    membership = _membership(session, org_id, user_id)
    before = OrgRole(membership.role)
    _require_role_change(principal, org_id, before, None)
    if before == OrgRole.owner and _owner_count(session, org_id) <= 1:
        raise Conflict("the last owner cannot be removed")
    session.delete(membership)
    audit.record(
        session, principal, "member.remove", "user", user_id, org_id, {"role": before.value}
    )


def list_invitations(
    session: Session, principal: Principal, org_id: uuid.UUID, page: PageRequest
) -> tuple[list[Invitation], str | None]:
    principal.require(org_id, Perm.members_read)
    statement = select(Invitation).where(Invitation.organisation_id == org_id)
    rows = session.exec(paginate(statement, Invitation.id, page)).all()
    return finish_page(rows, page, lambda invitation: invitation.id)


def create_invitation(
    session: Session, principal: Principal, org_id: uuid.UUID, data: InvitationCreate
) -> tuple[Invitation, str]:
    _require_role_change(principal, org_id, None, data.role)
    get_organisation(session, principal, org_id)  # staff pass the role check for any id
    already_member = session.exec(
        select(Membership.id)
        .join(User, col(User.id) == Membership.user_id)
        .where(Membership.organisation_id == org_id, User.email == data.email)
    ).first()
    if already_member:
        raise AlreadyExists(f"{data.email} is already a member")
    now = utcnow()
    pending = session.exec(
        select(Invitation.id).where(
            Invitation.organisation_id == org_id,
            Invitation.email == data.email,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
            Invitation.expires_at > now,
        )
    ).first()
    if pending:
        raise AlreadyExists(f"{data.email} already has a pending invitation; revoke it first")
    plaintext = "inv_" + secrets.token_urlsafe(32)
    invitation = Invitation(
        organisation_id=org_id,
        email=data.email,
        role=data.role,
        token_digest=digest(plaintext),
        invited_by=principal.user_id,
        expires_at=now + timedelta(days=get_settings().invitation_days),
    )
    session.add(invitation)
    audit.record(
        session,
        principal,
        "invitation.create",
        "invitation",
        invitation.id,
        org_id,
        {"email": data.email, "role": data.role.value},
    )
    return invitation, plaintext


def revoke_invitation(
    session: Session, principal: Principal, org_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    principal.require(org_id, Perm.members_manage)
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.organisation_id != org_id:
        raise NotFound("invitation not found")
    if invitation.accepted_at is not None:
        raise Conflict("the invitation has already been accepted")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        session.add(invitation)
        audit.record(session, principal, "invitation.revoke", "invitation", invitation.id, org_id)
    return invitation


def accept_invitation(
    session: Session, principal: Principal | None, plaintext: str
) -> tuple[Membership, str | None]:
    """Join the organisation. A caller without a token proves who they are by
    holding the invitation sent to their address; they get a first API token
    bound to this organisation."""
    invitation = session.exec(
        select(Invitation).where(Invitation.token_digest == digest(plaintext))
    ).first()
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound("invitation not found")
    if invitation.accepted_at is not None:
        raise Conflict("the invitation has already been accepted")
    if invitation.expires_at <= utcnow():
        raise Conflict("the invitation has expired; ask for a new one")
    if principal is not None:
        user_id = principal.user_id
    else:
        user_id = find_or_create_user(session, invitation.email).id
    existing = session.exec(
        select(Membership).where(
            Membership.organisation_id == invitation.organisation_id,
            Membership.user_id == user_id,
        )
    ).first()
    if existing is not None:
        raise AlreadyExists("you are already a member of this organisation")
    membership = Membership(
        organisation_id=invitation.organisation_id, user_id=user_id, role=invitation.role
    )
    session.add(membership)
    invitation.accepted_at = utcnow()
    invitation.accepted_by = user_id
    session.add(invitation)
    first_token: str | None = None
    if principal is None:
        user = session.get(User, user_id)
        assert user is not None
        _, first_token = tokens.issue(
            session,
            user,
            "first token",
            set(PERSON_SCOPES),
            NEWCOMER_TOKEN_LIFETIME,
            invitation.organisation_id,
        )
    audit.record(
        session,
        principal,
        "invitation.accept",
        "invitation",
        invitation.id,
        invitation.organisation_id,
        {"role": invitation.role},
        actor_label=None if principal else invitation.email,
    )
    return membership, first_token
