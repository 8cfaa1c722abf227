from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter

from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.pagination import Page
from controlplane.tokens import service
from controlplane.tokens.models import ApiToken
from controlplane.tokens.schemas import TokenCreate, TokenCreated, TokenOut

router = APIRouter(prefix=API_PREFIX, tags=["tokens"])


def _out(token: ApiToken) -> TokenOut:
    return TokenOut(**token.model_dump(), prefix=f"herd_{token.lookup}_")


@router.get("/tokens", response_model=Page[TokenOut])
def list_tokens(principal: PrincipalDep, session: SessionDep, page: PageDep) -> Page[TokenOut]:
    items, cursor = service.list_for_caller(session, principal, page)
    return Page(items=[_out(t) for t in items], next_cursor=cursor)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(data: TokenCreate, principal: PrincipalDep, session: SessionDep) -> TokenCreated:
    token, plaintext = service.create_for_caller(
        session,
        principal,
        data.name,
        set(data.scopes),
        timedelta(days=data.expires_in_days),
        data.organisation_id,
    )
    return TokenCreated(**_out(token).model_dump(), token=plaintext)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> TokenOut:
    return _out(service.revoke(session, principal, token_id))


@router.get("/organisations/{org_id}/tokens", response_model=Page[TokenOut])
def list_organisation_tokens(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[TokenOut]:
    items, cursor = service.list_for_organisation(session, principal, org_id, page)
    return Page(items=[_out(t) for t in items], next_cursor=cursor)
