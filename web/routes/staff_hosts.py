"""The console's host changes: capacity, and draining a host so placement
passes it by (its servers stay), through the fleet service's own update."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from controlplane.deps import SessionDep
from controlplane.fleet import service as fleet
from controlplane.fleet.models import HostState
from controlplane.fleet.schemas import HostUpdate
from web import forms
from web.routing import PrincipalDep, WebRoute, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# The states staff set by hand; pending and failed belong to a provider's launch.
SETTABLE_STATES = (HostState.active, HostState.draining, HostState.disabled)


@router.post("/staff/hosts/{host_id}")
def update_host(
    request: Request,
    host_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    capacity: Annotated[str, Form()] = "",
    state: Annotated[str, Form()] = "",
) -> Response:
    if state and state not in SETTABLE_STATES:
        return render(
            request,
            "error.html",
            {"title": "Host not changed", "detail": f"a host cannot be set to {state!r} here"},
            422,
        )
    values = {"capacity": forms.blank_to_none(capacity), "state": forms.blank_to_none(state)}
    data, errors = forms.parse(HostUpdate, {k: v for k, v in values.items() if v is not None})
    if data is None:
        detail = "; ".join(f"{field}: {message}" for field, message in errors.items())
        return render(request, "error.html", {"title": "Host not changed", "detail": detail}, 422)
    fleet.update_host(session, principal, host_id, data)
    return redirect(f"/staff/hosts#host-{host_id}")
