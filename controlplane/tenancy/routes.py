from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from controlplane.deps import API_PREFIX, OptionalPrincipalDep, PageDep, PrincipalDep, SessionDep
from controlplane.pagination import Page
from controlplane.tenancy import service
from controlplane.tenancy.models import Invitation, Membership, User
from controlplane.tenancy.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    MemberOut,
    MemberUpdate,
    MeOut,
    OrganisationCreate,
    OrganisationOut,
    OrganisationUpdate,
)

router = APIRouter(prefix=API_PREFIX, tags=["organisations"])


def _member(membership: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=membership.role,
        joined_at=membership.created_at,
    )


@router.get("/me", response_model=MeOut, tags=["me"])
def me(principal: PrincipalDep, session: SessionDep) -> MeOut:
    user = session.get(User, principal.user_id)
    assert user is not None
    return MeOut(
        id=user.id,
        email=user.email,
        name=user.name,
        staff_role=principal.staff_role,
        organisations=principal.memberships,
    )


@router.get("/organisations", response_model=Page[OrganisationOut])
def list_organisations(principal: PrincipalDep, session: SessionDep, page: PageDep) -> Page:
    items, cursor = service.list_organisations(session, principal, page)
    return Page(items=[OrganisationOut.model_validate(o) for o in items], next_cursor=cursor)


@router.post("/organisations", response_model=OrganisationOut, status_code=201)
def create_organisation(
    data: OrganisationCreate, principal: PrincipalDep, session: SessionDep
) -> OrganisationOut:
    return OrganisationOut.model_validate(service.create_organisation(session, principal, data))


@router.get("/organisations/{org_id}", response_model=OrganisationOut)
def get_organisation(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> OrganisationOut:
    return OrganisationOut.model_validate(service.get_organisation(session, principal, org_id))


@router.patch("/organisations/{org_id}", response_model=OrganisationOut)
def update_organisation(
    org_id: uuid.UUID, data: OrganisationUpdate, principal: PrincipalDep, session: SessionDep
) -> OrganisationOut:
    return OrganisationOut.model_validate(
        service.update_organisation(session, principal, org_id, data)
    )


@router.get("/organisations/{org_id}/members", response_model=Page[MemberOut])
def list_members(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page:
    rows, cursor = service.list_members(session, principal, org_id, page)
    return Page(items=[_member(m, u) for m, u in rows], next_cursor=cursor)


@router.patch("/organisations/{org_id}/members/{user_id}", response_model=MemberOut)
def change_member_role(
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    data: MemberUpdate,
    principal: PrincipalDep,
    session: SessionDep,
) -> MemberOut:
    return _member(*service.change_member_role(session, principal, org_id, user_id, data.role))


@router.delete("/organisations/{org_id}/members/{user_id}", status_code=204)
def remove_member(
    org_id: uuid.UUID, user_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    service.remove_member(session, principal, org_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/organisations/{org_id}/invitations", response_model=Page[InvitationOut])
def list_invitations(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page:
    items, cursor = service.list_invitations(session, principal, org_id, page)
    return Page(items=[InvitationOut.model_validate(i) for i in items], next_cursor=cursor)


@router.post(
    "/organisations/{org_id}/invitations", response_model=InvitationCreated, status_code=201
)
def create_invitation(
    org_id: uuid.UUID, data: InvitationCreate, principal: PrincipalDep, session: SessionDep
) -> InvitationCreated:
    invitation, token = service.create_invitation(session, principal, org_id, data)
    return InvitationCreated(**InvitationOut.model_validate(invitation).model_dump(), token=token)


@router.delete("/organisations/{org_id}/invitations/{invitation_id}", response_model=InvitationOut)
def revoke_invitation(
    org_id: uuid.UUID, invitation_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Invitation:
    return service.revoke_invitation(session, principal, org_id, invitation_id)


@router.post("/invitations/accept", response_model=InvitationAccepted, status_code=201)
def accept_invitation(
    data: InvitationAccept, principal: OptionalPrincipalDep, session: SessionDep
) -> InvitationAccepted:
    membership, first_token = service.accept_invitation(session, principal, data.token)
    return InvitationAccepted(
        organisation_id=membership.organisation_id, role=membership.role, api_token=first_token
    )
