"""The durable pipeline runner: checkpoints, leases, retries, failure and
cancellation, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job, JobEvent, JobState, JobStep, StepState
from controlplane.sqltypes import utcnow
from provisioning import pipeline
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry
from provisioning.redaction import Redactor


class Recorder:
    """Steps that count their runs, fail on demand, and keep 'created'
    resources in a dict, the way a real step would find-or-create."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.created: dict[str, int] = {}
        self.fail: dict[str, Exception] = {}
        self.failures_seen: list[str] = []

    def step(self, name: str) -> Step:
        def run(context: StepContext) -> dict[str, Any]:
            self.calls[name] += 1
            error = self.fail.pop(name, None)
            if error is not None:
                raise error
            self.created.setdefault(name, len(self.created))
            return {"resource": self.created[name], "token": "sekret-value-123"}

        return Step(name, run, attempts=3, backoff_seconds=10)

    def pipeline(self) -> Pipeline:
        return Pipeline(
            "demo",
            tuple(self.step(n) for n in ("reserve", "prepare", "run", "activate")),
            on_failure=lambda _ctx, reason: self.failures_seen.append(reason),
        )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _job(engine: Engine, recorder: Recorder) -> uuid.UUID:
    with Session(engine) as session:
        job = jobs.create_job(session, "demo", recorder.pipeline().step_names)
        session.info.clear()  # no broker here: the test runs the job itself
        session.commit()
        return job.id


def _run(
    engine: Engine, recorder: Recorder, job_id: uuid.UUID, worker: str = "worker-a"
) -> pipeline.RunOutcome:
    return pipeline.run_job(
        engine,
        job_id,
        {"demo": recorder.pipeline()},
        lease_seconds=30,
        redactor_for=lambda _s, _j: Redactor(["sekret-value-123"]),
        owner=worker,
    )


def _steps(engine: Engine, job_id: uuid.UUID) -> dict[str, JobStep]:
    with Session(engine) as session:
        return {s.name: s for s in session.exec(select(JobStep).where(JobStep.job_id == job_id))}


def test_a_job_runs_every_step_once_and_checkpoints_them(
    engine: Engine, recorder: Recorder
) -> None:
    job_id = _job(engine, recorder)
    assert _run(engine, recorder, job_id).state == JobState.succeeded
    assert recorder.calls == {"reserve": 1, "prepare": 1, "run": 1, "activate": 1}
    steps = _steps(engine, job_id)
    assert all(s.state == StepState.done for s in steps.values())
    # Step results are stored redacted.
    assert steps["run"].result == {"resource": 2, "token": "********"}
    # Running a finished job again does nothing.
    _run(engine, recorder, job_id)
    assert sum(recorder.calls.values()) == 4


def test_a_worker_dying_mid_step_is_resumed_from_that_step(
    engine: Engine, recorder: Recorder
) -> None:
    job_id = _job(engine, recorder)
    # A first worker finishes two steps, then dies inside the third: the
    # step is left running and its lease held by a process that is gone.
    recorder.fail["run"] = KeyboardInterrupt()  # not caught: the process "dies"
    with pytest.raises(KeyboardInterrupt):
        _run(engine, recorder, job_id)
    assert _steps(engine, job_id)["run"].state == StepState.running

    # While the dead worker's lease lasts, nobody takes the job over...
    assert pipeline.due_jobs(engine, utcnow()) == []
    assert _run(engine, recorder, job_id, "worker-b").detail is not None
    # ...once it runs out, the reconciler finds the job and a worker resumes it.
    later = utcnow() + timedelta(seconds=31)
    assert pipeline.due_jobs(engine, later) == [job_id]
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(lease_expires_at=utcnow()))
        session.commit()
    assert _run(engine, recorder, job_id, "worker-b").state == JobState.succeeded
    assert recorder.calls == {"reserve": 1, "prepare": 1, "run": 2, "activate": 1}
    assert recorder.created == {"reserve": 0, "prepare": 1, "run": 2, "activate": 3}


def test_a_transient_failure_is_retried_after_a_backoff(engine: Engine, recorder: Recorder) -> None:
    job_id = _job(engine, recorder)
    recorder.fail["prepare"] = StepRetry("bucket service answered 503")
    outcome = _run(engine, recorder, job_id)
    assert outcome.state == JobState.pending
    assert outcome.retry_in == 10
    assert _steps(engine, job_id)["prepare"].error == "bucket service answered 503"
    # Not due yet: a resend before the backoff has passed does nothing.
    _run(engine, recorder, job_id)
    assert recorder.calls["prepare"] == 1
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(not_before=utcnow()))
        session.commit()
    assert _run(engine, recorder, job_id).state == JobState.succeeded
    assert recorder.calls["prepare"] == 2
    assert recorder.calls["reserve"] == 1


def test_exhausted_retries_and_permanent_failures_fail_the_job_with_a_reason(
    engine: Engine, recorder: Recorder
) -> None:
    job_id = _job(engine, recorder)
    recorder.fail["run"] = StepFailed("playbook failed on h1: sekret-value-123 rejected")
    outcome = _run(engine, recorder, job_id)
    assert outcome.state == JobState.failed
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.error == "run: playbook failed on h1: ******** rejected"
        assert job.finished_at is not None
    assert recorder.failures_seen == ["run: playbook failed on h1: ******** rejected"]
    assert recorder.calls["activate"] == 0


def test_a_cancel_request_stops_before_the_next_step(engine: Engine, recorder: Recorder) -> None:
    job_id = _job(engine, recorder)
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(cancel_requested=True))
        session.commit()
    assert _run(engine, recorder, job_id).state == JobState.cancelled
    assert sum(recorder.calls.values()) == 0


def test_a_live_lease_keeps_other_workers_out(engine: Engine, recorder: Recorder) -> None:
    job_id = _job(engine, recorder)
    lease = pipeline.Lease(engine, job_id, "other-worker", 60)
    assert lease.claim(utcnow())
    assert not pipeline.Lease(engine, job_id, "me", 60).claim(utcnow())
    assert sum(recorder.calls.values()) == 0


def test_a_secret_made_by_one_step_is_masked_in_the_steps_after_it(engine: Engine) -> None:
    made: list[str] = []

    def make(context: StepContext) -> dict[str, Any]:
        made.append("fresh-secret-4f9c2d")
        return {"made": made[-1]}

    def use(context: StepContext) -> dict[str, Any]:
        context.record_event(task="Use it", status="ok", result={"stdout": made[-1]})
        raise StepFailed(f"the host refused {made[-1]}")

    demo = Pipeline("demo", (Step("make", make), Step("use", use)))
    with Session(engine) as session:
        job = jobs.create_job(session, "demo", demo.step_names)
        session.info.clear()
        session.commit()
        job_id = job.id
    pipeline.run_job(
        engine, job_id, {"demo": demo}, redactor_for=lambda _s, _j: Redactor(made), owner="w"
    )
    steps = _steps(engine, job_id)
    assert steps["make"].result == {"made": "********"}
    with Session(engine) as session:
        events = session.exec(select(JobEvent).where(JobEvent.job_id == job_id)).all()
        failed = session.get(Job, job_id)
    assert [e.result for e in events] == [{"stdout": "********"}]
    assert failed is not None
    assert failed.error == "use: the host refused ********"
