"""The server page's backups section: refreshing the list from the host.
The list itself is part of the server page (web/templates/_backups.html)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from starlette.responses import Response

from controlplane.backups import service as backups
from controlplane.deps import SessionDep
from web.routing import PrincipalDep, WebRoute, redirect

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.post("/servers/{server_id}/backups/refresh")
def refresh_backups(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    backups.start_refresh(session, principal, server_id)
    # The server page follows the job live and shows the list when it ends.
    return redirect(f"/servers/{server_id}#backups-h")
