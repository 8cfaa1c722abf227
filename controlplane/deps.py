"""FastAPI dependencies: the request's unit of work and its principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from controlplane.auth.principal import Principal
from controlplane.auth.roles import Scope
from controlplane.db import get_engine
from controlplane.pagination import PageRequest, page_request
from controlplane.problems import Unauthenticated
from controlplane.tokens import service as tokens

API_PREFIX = "/api/v1"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session() -> Iterator[Session]:
    """One unit of work per request: commit once after the handler returns
    and before the answer leaves, so a client never sees success for a change
    that did not commit."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API token: herd_<lookup>_<secret>")


def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API token as 'Authorization: Bearer <token>'")
    principal = tokens.authenticate(session, credentials.credentials)
    # Reading needs the read scope and changing needs write, whatever the
    # endpoint; endpoints may ask for more (staff, playbooks).
    principal.require_scope(Scope.read if request.method in _READ_METHODS else Scope.write)
    request.state.principal = principal
    return principal


def get_optional_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    return get_principal(request, session, credentials)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]
PageDep = Annotated[PageRequest, Depends(page_request)]
