from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from controlplane.db import get_engine
from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.jobs import service
from controlplane.jobs.models import FINISHED, Job, JobState
from controlplane.jobs.schemas import JobDetail, JobEventOut, JobOut, StepOut
from controlplane.pagination import Page

router = APIRouter(prefix=API_PREFIX, tags=["jobs"])
STREAM_POLL_SECONDS = 0.5


@router.get("/jobs", response_model=Page[JobOut])
def list_jobs(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    state: Annotated[JobState | None, Query()] = None,
) -> Page[JobOut]:
    items, cursor = service.list_jobs(session, principal, page, state=state)
    return Page(items=[JobOut.model_validate(j) for j in items], next_cursor=cursor)


@router.get("/servers/{server_id}/jobs", response_model=Page[JobOut])
def list_server_jobs(
    server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[JobOut]:
    items, cursor = service.list_jobs(session, principal, page, server_id=server_id)
    return Page(items=[JobOut.model_validate(j) for j in items], next_cursor=cursor)


@router.get("/jobs/{job_id}", response_model=JobDetail)
def get_job(job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> JobDetail:
    job, steps = service.get_job(session, principal, job_id)
    return JobDetail(
        **JobOut.model_validate(job).model_dump(),
        steps=[StepOut.model_validate(s) for s in steps],
    )


@router.get("/jobs/{job_id}/events", response_model=Page[JobEventOut])
def list_job_events(
    job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[JobEventOut]:
    items, cursor = service.list_events(session, principal, job_id, page)
    return Page(items=[JobEventOut.model_validate(e) for e in items], next_cursor=cursor)


@router.get(
    "/jobs/{job_id}/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def stream_job(
    job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> StreamingResponse:
    """Server-sent events: every task event as it is recorded (`event: task`),
    then one `event: end` with the job's final state."""
    service.get_job(session, principal, job_id)  # authorises, or 404

    async def events() -> AsyncIterator[str]:
        last: uuid.UUID | None = None
        while True:
            batch, job = await asyncio.to_thread(_poll, job_id, last)
            for event in batch:
                last = event.id
                payload = JobEventOut.model_validate(event).model_dump(mode="json")
                yield f"id: {event.id}\nevent: task\ndata: {json.dumps(payload)}\n\n"
            if job is None or (job.state in FINISHED and not batch):
                state = job.state.value if job else "gone"
                yield f"event: end\ndata: {json.dumps({'state': state})}\n\n"
                return
            if not batch:
                await asyncio.sleep(STREAM_POLL_SECONDS)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


def _poll(job_id: uuid.UUID, after: uuid.UUID | None) -> tuple[list, Job | None]:
    with Session(get_engine(), expire_on_commit=False) as session:
        return service.events_after(session, job_id, after), session.get(Job, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> JobOut:
    return JobOut.model_validate(service.request_cancel(session, principal, job_id))
