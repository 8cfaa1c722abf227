"""Staff: rollouts. Create one with a preview of its waves (the service's
dry run), then watch each wave and each server live, and pause, resume or
abort it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.responses import Response

from controlplane.auth.principal import Principal
from controlplane.deps import SessionDep
from controlplane.pagination import PageRequest, page_request
from controlplane.problems import HerdError
from controlplane.rollouts import releases, service
from controlplane.rollouts.models import Rollout, RolloutState
from controlplane.rollouts.schemas import RolloutSpec
from controlplane.sqltypes import utcnow
from web import forms
from web.routes.live import POLL_SECONDS, STREAM_SECONDS, sse, stream
from web.routing import PrincipalDep, WebRoute, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
TARGETS_SHOWN = 500
STEER_ACTIONS = ("pause", "resume", "abort")
FINAL = frozenset({RolloutState.completed, RolloutState.aborted})


@router.get("/staff/rollouts")
def rollout_list(
    request: Request, principal: PrincipalDep, session: SessionDep, cursor: str | None = None
) -> Response:
    rows, next_cursor = service.list_rollouts(session, principal, page_request(cursor, None))
    return render(
        request,
        "staff/rollouts.html",
        {
            "rollouts": sorted(rows, key=lambda r: r.created_at, reverse=True),
            "next_cursor": next_cursor,
        },
    )


def _wave_spec(text: str) -> list[int | str]:
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    return [int(p) if p.isdigit() else p for p in parts]


def _spec_from_form(values: dict[str, str]) -> tuple[RolloutSpec | None, dict[str, str]]:
    kind, chosen = values["selector"], values["selector_value"]
    items = [v.strip() for v in chosen.replace("\n", ",").split(",") if v.strip()]
    selector: dict[str, Any] = {"all": True} if kind == "all" else {kind: items}
    return forms.parse(
        RolloutSpec,
        {
            "target": values["target"],
            "selector": selector,
            "waves": _wave_spec(values["waves"]),
            "concurrency": values["concurrency"] or 10,
            "soak_seconds": values["soak_seconds"] or 0,
            "failure_budget": int(values["failure_budget"])
            if values["failure_budget"].isdigit()
            else values["failure_budget"],
            "urgent": values["urgent"] == "on",
            "notice_seconds": values["notice_seconds"] or 0,
        },
    )


FormText = Annotated[str, Field(max_length=20_000)]


class RolloutForm(BaseModel):
    """The new-rollout form as posted, all text (what the page shows back);
    _spec_from_form turns it into a RolloutSpec."""

    target: FormText = ""
    selector: FormText = "all"
    selector_value: FormText = ""
    waves: FormText = "1, 25%, 100%"
    concurrency: FormText = "10"
    soak_seconds: FormText = "0"
    failure_budget: FormText = "0"
    urgent: FormText = ""
    notice_seconds: FormText = "0"


def _form_page(
    request: Request,
    session: Session,
    principal: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    plan: Any = None,
    status: int = 200,
) -> Response:
    catalogue = releases.list_all(session, principal)
    return render(
        request,
        "staff/rollout_new.html",
        {
            "releases": [r for r, _ in catalogue],
            "values": values,
            "errors": errors,
            "plan": plan,
        },
        status_code=status,
    )


@router.get("/staff/rollouts/new")
def new_rollout(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    return _form_page(request, session, principal, RolloutForm().model_dump(), {})


@router.post("/staff/rollouts/preview")
def preview_rollout(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    form: Annotated[RolloutForm, Form()],
) -> Response:
    values = form.model_dump()
    spec, errors = _spec_from_form(values)
    if spec is None:
        return _form_page(request, session, principal, values, errors, status=422)
    try:
        plan = service.preview(session, principal, spec, utcnow())
    except HerdError as exc:
        if exc.status in (401, 403, 404):
            raise
        return _form_page(
            request, session, principal, values, {"form": exc.detail}, status=exc.status
        )
    return _form_page(request, session, principal, values, {}, plan)


@router.post("/staff/rollouts")
def start_rollout(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    background: BackgroundTasks,
    form: Annotated[RolloutForm, Form()],
) -> Response:
    values = form.model_dump()
    spec, errors = _spec_from_form(values)
    if spec is None:
        return _form_page(request, session, principal, values, errors, status=422)
    try:
        rollout = service.start(session, principal, spec, utcnow())
    except HerdError as exc:
        if exc.status in (401, 403, 404):
            raise
        return _form_page(
            request, session, principal, values, {"form": exc.detail}, status=exc.status
        )
    # Sent after the response, so after the unit of work has committed.
    background.add_task(_kick)
    return redirect(f"/staff/rollouts/{rollout.id}")


def _kick() -> None:
    # Start the first wave now rather than at the engine's next tick, as the
    # API does.
    from provisioning.rollouts import send_advance

    send_advance()


def _targets(session: Session, principal: Principal, rollout_id: uuid.UUID) -> list[Any]:
    rows, _ = service.list_targets(session, principal, rollout_id, PageRequest(limit=TARGETS_SHOWN))
    return rows


def _progress(session: Session, rollout: Rollout, targets: list[Any]) -> dict[str, Any]:
    counts = service.wave_counts(session, rollout.id)
    return {
        "state": rollout.state.value,
        "reason": rollout.state_reason or "",
        "waves": {str(wave): dict(c) for wave, c in sorted(counts.items()) if wave >= 0},
        "targets": {
            str(target.server_id): {"state": target.state.value, "outcome": target.outcome or ""}
            for target, _ in targets
        },
    }


@router.get("/staff/rollouts/{rollout_id}")
def rollout_page(
    request: Request, rollout_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    rollout = service.get(session, principal, rollout_id)
    targets = _targets(session, principal, rollout.id)
    progress = _progress(session, rollout, targets)
    return render(
        request,
        "staff/rollout.html",
        {
            "rollout": rollout,
            "targets": targets,
            "progress": progress,
            "final": rollout.state in FINAL,
        },
    )


@router.get("/staff/rollouts/{rollout_id}/live")
def rollout_live(
    rollout_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> StreamingResponse:
    """`progress` with the rollout's state, each wave's counts and each
    server's state, whenever any of them changes; `end` once it is over."""
    service.get(session, principal, rollout_id)  # authorises, or 404

    def poll() -> tuple[dict[str, Any], bool]:
        from controlplane.db import get_engine

        with Session(get_engine(), expire_on_commit=False) as db:
            rollout = service.get(db, principal, rollout_id)
            return _progress(db, rollout, _targets(db, principal, rollout_id)), (
                rollout.state in FINAL
            )

    async def events() -> AsyncIterator[str]:
        deadline = time.monotonic() + STREAM_SECONDS
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            progress, final = await asyncio.to_thread(poll)
            if progress != last:
                last = progress
                yield sse("progress", progress)
            if final:
                yield sse("end", {"state": progress["state"]})
                return
            await asyncio.sleep(POLL_SECONDS * 2)

    return stream(events())


@router.post("/staff/rollouts/{rollout_id}/{action}")
def steer(
    request: Request,
    rollout_id: uuid.UUID,
    action: str,
    principal: PrincipalDep,
    session: SessionDep,
    background: BackgroundTasks,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    if action not in STEER_ACTIONS:
        return render(request, "error.html", {"title": "Not found", "detail": action}, 404)
    service.steer(session, principal, rollout_id, action, utcnow())
    if action == "resume":
        background.add_task(_kick)
    return redirect(f"/staff/rollouts/{rollout_id}")
