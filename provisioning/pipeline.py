"""The durable pipeline runner.

A job is a list of named steps. A worker claims the job with a lease, runs
each step that is not yet done, and records each step's completion in the
same database the API writes: that record is the checkpoint. A worker killed
at any line leaves at worst one step marked running with an expired lease;
the next worker runs that step again, which is why every step must be
idempotent (find what exists before creating anything).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.jobs.models import FINISHED, Job, JobEvent, JobState, JobStep, StepState
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow
from provisioning.redaction import Redactor

log = logging.getLogger(__name__)


class StepRetry(Exception):
    """A transient failure: try the step again after a backoff."""


class StepFailed(Exception):
    """A permanent failure: the job fails and says why."""


class StepWait(Exception):
    """Not a failure: the step depends on work another job is doing. The job
    gives its worker back and looks again after `seconds`; the look does not
    count as an attempt. A worker that waited in place instead could hold
    every slot while the job it waits for sits queued behind it."""

    def __init__(self, reason: str, seconds: float = 3.0) -> None:
        super().__init__(reason)
        self.seconds = seconds


@dataclass
class StepContext:
    job_id: uuid.UUID
    server_id: uuid.UUID | None
    params: dict[str, Any]
    step: str
    attempt: int
    engine: Engine
    redactor: Redactor
    worker: str
    should_cancel: Callable[[], bool]

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def record_event(self, job_id: uuid.UUID | None = None, **fields: Any) -> None:
        """An event of this step, on this job or, for a run this step leads
        for several jobs, on `job_id`'s."""
        # Whatever a step reports passes the redactor on its way to storage.
        if "result" in fields:
            fields["result"] = self.redactor.value(fields["result"])
        with self.session() as session:
            session.add(JobEvent(job_id=job_id or self.job_id, step=self.step, **fields))
            session.commit()


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[StepContext], dict[str, Any] | None]
    attempts: int = 4
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 300.0


@dataclass(frozen=True)
class Pipeline:
    kind: str
    steps: tuple[Step, ...]
    on_failure: Callable[[StepContext, str], None] | None = None
    on_cancel: Callable[[StepContext], None] | None = None

    @property
    def step_names(self) -> list[str]:
        return [step.name for step in self.steps]


@dataclass
class RunOutcome:
    state: JobState
    retry_in: float | None = None
    detail: str | None = None
    steps_run: list[str] = field(default_factory=list)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Lease:
    """Holds a job's lease and renews it from a thread while a long step
    (an Ansible run) works, so only a dead worker loses it."""

    def __init__(self, engine: Engine, job_id: uuid.UUID, owner: str, seconds: float) -> None:
        self.engine, self.job_id, self.owner, self.seconds = engine, job_id, owner, seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def claim(self, now: datetime) -> bool:
        with Session(self.engine) as session:
            result = session.execute(
                update(Job)
                .where(
                    col(Job.id) == self.job_id,
                    col(Job.state).in_([JobState.pending, JobState.running]),
                    or_(
                        col(Job.lease_owner).is_(None),
                        col(Job.lease_expires_at) < now,
                        col(Job.lease_owner) == self.owner,
                    ),
                    or_(col(Job.not_before).is_(None), col(Job.not_before) <= now),
                )
                .values(
                    state=JobState.running,
                    lease_owner=self.owner,
                    lease_expires_at=now + timedelta(seconds=self.seconds),
                    runs=Job.runs + 1,
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
            return result.rowcount == 1  # type: ignore[attr-defined]

    def renew(self) -> bool:
        with Session(self.engine) as session:
            result = session.execute(
                update(Job)
                .where(col(Job.id) == self.job_id, col(Job.lease_owner) == self.owner)
                .values(lease_expires_at=utcnow() + timedelta(seconds=self.seconds))
                .execution_options(synchronize_session=False)
            )
            session.commit()
            return result.rowcount == 1  # type: ignore[attr-defined]

    def __enter__(self) -> Lease:
        def beat() -> None:
            while not self._stop.wait(self.seconds / 3):
                if not self.renew():
                    self.lost = True
                    return

        self._thread = threading.Thread(target=beat, name=f"lease-{self.job_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def run_job(
    engine: Engine,
    job_id: uuid.UUID,
    pipelines: dict[str, Pipeline],
    lease_seconds: float = 120.0,
    redactor_for: Callable[[Session, Job], Redactor] = lambda _s, _j: Redactor(),
    owner: str | None = None,
) -> RunOutcome:
    owner = owner or worker_id()
    lease = Lease(engine, job_id, owner, lease_seconds)
    if not lease.claim(utcnow()):
        return RunOutcome(state=JobState.running, detail="held by another worker or not due")
    with Session(engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        pipeline = pipelines[job.kind]
        if job.started_at is None:
            job.started_at = utcnow()
            session.add(job)
            session.commit()
        steps = {s.name: s for s in session.exec(select(JobStep).where(JobStep.job_id == job_id))}

    def current_redactor() -> Redactor:
        # Built anew around each step: a step may create secrets (the
        # server's, its storage key) that later steps and this one's own
        # result and errors must not show.
        with Session(engine) as lookup:
            return redactor_for(lookup, job)

    def cancelled() -> bool:
        with Session(engine) as check:
            row = check.get(Job, job_id)
            return bool(row and row.cancel_requested)

    outcome = RunOutcome(state=JobState.running)
    with lease:
        for step in pipeline.steps:
            record = steps[step.name]
            if record.state == StepState.done:
                continue
            redactor = current_redactor()
            if cancelled():
                return _finish_cancelled(engine, job, pipeline, redactor, owner, outcome)
            context = StepContext(
                job_id=job_id,
                server_id=job.server_id,
                params=job.params,
                step=step.name,
                attempt=record.attempts + 1,
                engine=engine,
                redactor=redactor,
                worker=owner,
                should_cancel=cancelled,
            )
            _mark_step(
                engine,
                record.id,
                StepState.running,
                attempts=record.attempts + 1,
                started_at=utcnow(),
                error=None,
            )
            outcome.steps_run.append(step.name)
            try:
                result = step.run(context) or {}
            except StepWait as wait:
                _mark_step(engine, record.id, StepState.pending, attempts=record.attempts)
                _release(
                    engine,
                    job_id,
                    owner,
                    JobState.pending,
                    not_before=utcnow() + timedelta(seconds=wait.seconds),
                )
                outcome.state, outcome.retry_in, outcome.detail = (
                    JobState.pending,
                    wait.seconds,
                    str(wait),
                )
                return outcome
            except StepFailed as failure:
                context.redactor = current_redactor()
                return _fail(engine, job, pipeline, context, record, str(failure), owner, outcome)
            except Exception as error:  # noqa: BLE001 - anything else is worth a retry
                redactor = current_redactor()
                message = redactor.text(f"{type(error).__name__}: {error}")
                if isinstance(error, StepRetry):
                    message = redactor.text(str(error))
                log.warning(
                    "job %s step %s attempt %s: %s", job_id, step.name, context.attempt, message
                )
                if context.attempt >= step.attempts:
                    return _fail(engine, job, pipeline, context, record, message, owner, outcome)
                delay = get_settings().retry_backoff_scale * min(
                    step.backoff_seconds * 2 ** (context.attempt - 1), step.max_backoff_seconds
                )
                _mark_step(engine, record.id, StepState.pending, error=message)
                _release(
                    engine,
                    job_id,
                    owner,
                    JobState.pending,
                    not_before=utcnow() + timedelta(seconds=delay),
                )
                outcome.state, outcome.retry_in, outcome.detail = JobState.pending, delay, message
                return outcome
            if lease.lost:
                # Another worker took the job over (we were presumed dead);
                # our step's work is idempotent, so stop here and let it go on.
                outcome.detail = "lease lost"
                return outcome
            _mark_step(
                engine,
                record.id,
                StepState.done,
                finished_at=utcnow(),
                result=current_redactor().value(result),
                error=None,
            )
    _release(engine, job_id, owner, JobState.succeeded, finished_at=utcnow())
    outcome.state = JobState.succeeded
    return outcome


def _mark_step(engine: Engine, step_id: uuid.UUID, state: StepState, **values: Any) -> None:
    with Session(engine) as session:
        session.execute(
            update(JobStep)
            .where(col(JobStep.id) == step_id)
            .values(state=state, **values)
            .execution_options(synchronize_session=False)
        )
        session.commit()


def _release(engine: Engine, job_id: uuid.UUID, owner: str, state: JobState, **values: Any) -> None:
    with Session(engine) as session:
        session.execute(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.lease_owner) == owner)
            .values(state=state, lease_owner=None, lease_expires_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        session.commit()


def _fail(
    engine: Engine,
    job: Job,
    pipeline: Pipeline,
    context: StepContext,
    record: JobStep,
    message: str,
    owner: str,
    outcome: RunOutcome,
) -> RunOutcome:
    message = context.redactor.text(message)
    _mark_step(engine, record.id, StepState.failed, finished_at=utcnow(), error=message)
    if pipeline.on_failure is not None:
        pipeline.on_failure(context, f"{record.name}: {message}")
    _release(
        engine,
        job.id,
        owner,
        JobState.failed,
        finished_at=utcnow(),
        error=f"{record.name}: {message}",
    )
    outcome.state, outcome.detail = JobState.failed, message
    return outcome


def _finish_cancelled(
    engine: Engine,
    job: Job,
    pipeline: Pipeline,
    redactor: Redactor,
    owner: str,
    outcome: RunOutcome,
) -> RunOutcome:
    if pipeline.on_cancel is not None:
        pipeline.on_cancel(
            StepContext(
                job_id=job.id,
                server_id=job.server_id,
                params=job.params,
                step="cancel",
                attempt=1,
                engine=engine,
                redactor=redactor,
                worker=owner,
                should_cancel=lambda: True,
            )
        )
    _release(
        engine, job.id, owner, JobState.cancelled, finished_at=utcnow(), error="cancelled by staff"
    )
    outcome.state = JobState.cancelled
    return outcome


def due_jobs(engine: Engine, now: datetime, limit: int = 100) -> list[uuid.UUID]:
    """Jobs no live worker holds and that are due: lost broker messages,
    dead workers, retries whose backoff has passed."""
    with Session(engine) as session:
        rows = session.exec(
            select(Job.id)
            .where(
                col(Job.state).not_in(FINISHED),
                or_(col(Job.lease_expires_at).is_(None), col(Job.lease_expires_at) < now),
                or_(col(Job.not_before).is_(None), col(Job.not_before) <= now),
            )
            .order_by(col(Job.id))
            .limit(limit)
        ).all()
    return list(rows)
