"""Live progress over server-sent events: a server's state and its newest
job's log, a job's log, a rollout's waves.

Each stream polls the database (the workers write progress there, whichever
machine they run on) in a session of its own per poll, so no connection is
held between polls. Task events carry their id, so a browser that reconnects
(EventSource does so by itself) continues from Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from controlplane.db import get_engine
from controlplane.deps import SessionDep
from controlplane.jobs import service as jobs
from controlplane.jobs.models import FINISHED, Job, JobEvent
from controlplane.servers import service as servers
from controlplane.servers.models import Server
from web import queries
from web.routing import PrincipalDep, WebRoute

router = APIRouter(route_class=WebRoute, include_in_schema=False)

POLL_SECONDS = 0.5
# A stream ends after this long; the browser reconnects and carries on, and
# no connection lives forever behind a proxy.
STREAM_SECONDS = 300.0


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def task_payload(event: JobEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "at": event.at.strftime("%H:%M:%S"),
        "step": event.step,
        "host": event.host or "",
        "task": event.task or event.action or "",
        "status": event.status,
        "changed": event.changed,
    }


def _last_event_id(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.headers.get("last-event-id", ""))
    except ValueError:
        return None


def _read(work: Callable[[Session], Any]) -> Any:
    with Session(get_engine(), expire_on_commit=False) as session:
        return work(session)


@router.get("/servers/{server_id}/live")
def server_live(
    request: Request,
    server_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    job: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
) -> StreamingResponse:
    """`state` with the server's state and version (at once, then on each
    change); `task` for each new event of `job`, the job the page shows;
    `job` when a newer job starts, which ends the stream (the page reloads
    to show it)."""
    servers.get(session, principal, server_id)  # authorises, or 404
    shown_job = None
    if job is not None:
        # The job must be this server's: the id comes from the browser.
        found, _ = jobs.get_job(session, principal, job)
        shown_job = found.id if found.server_id == server_id else None

    def poll(last: uuid.UUID | None) -> tuple[Server | None, Job | None, list[JobEvent]]:
        def work(db: Session) -> tuple[Server | None, Job | None, list[JobEvent]]:
            newest = queries.latest_job(db, server_id)
            batch = jobs.events_after(db, shown_job, last) if shown_job is not None else []
            return db.get(Server, server_id), newest, batch

        return _read(work)  # type: ignore[no-any-return]

    async def events() -> AsyncIterator[str]:
        deadline = time.monotonic() + STREAM_SECONDS
        last = _last_event_id(request) or after
        seen: tuple[Any, ...] | None = None
        while time.monotonic() < deadline:
            server, newest, batch = await asyncio.to_thread(poll, last)
            if server is None:
                yield sse("gone", {})
                return
            state = (server.state.value, server.version, server.state_reason)
            if state != seen:
                seen = state
                yield sse("state", {"state": state[0], "version": state[1], "reason": state[2]})
            for event in batch:
                last = event.id
                yield sse("task", task_payload(event), str(event.id))
            if newest is not None and newest.id != shown_job:
                yield sse("job", {"id": str(newest.id), "kind": newest.kind})
                return
            if not batch:
                await asyncio.sleep(POLL_SECONDS)

    return stream(events())


@router.get("/jobs/{job_id}/live")
def job_live(
    request: Request,
    job_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    after: uuid.UUID | None = None,
) -> StreamingResponse:
    """`task` for each event as it is recorded, then `end` with the job's
    final state."""
    jobs.get_job(session, principal, job_id)  # authorises, or 404
    resume_after = _last_event_id(request) or after

    def poll(after: uuid.UUID | None) -> tuple[list[JobEvent], Job | None]:
        return _read(lambda db: (jobs.events_after(db, job_id, after), db.get(Job, job_id)))

    async def events() -> AsyncIterator[str]:
        deadline = time.monotonic() + STREAM_SECONDS
        last = resume_after
        while time.monotonic() < deadline:
            batch, job = await asyncio.to_thread(poll, last)
            for event in batch:
                last = event.id
                yield sse("task", task_payload(event), str(event.id))
            if job is None or (job.state in FINISHED and not batch):
                yield sse("end", {"state": job.state.value if job else "gone"})
                return
            if not batch:
                await asyncio.sleep(POLL_SECONDS)

    return stream(events())
