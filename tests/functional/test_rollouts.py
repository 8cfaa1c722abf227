"""Rollouts through the API and the engine's reconcile step, on both
databases. Jobs are finished at the database level here (what a worker
would record); tests/e2e/test_rollouts.py runs the real playbooks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.jobs.models import Job, JobState
from controlplane.rollouts import engine as rollout_engine
from controlplane.rollouts.models import Rollout, RolloutState, RolloutTarget, TargetState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.servers.upgrades import SHARED_RUN_PARAM
from tests.factories import World, host, plan, server
from tests.mailbox import Mailbox

# Monday 5 January 2026, noon UTC.
NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


def _fleet(engine: Engine, world: World, n: int, version: str = "4.5.1") -> list[uuid.UUID]:
    """n active servers of the world's organisation on a version, oldest first."""
    ids = []
    with Session(engine) as session:
        the_plan = session.exec(select(plan.__globals__["Plan"])).first()  # type: ignore[index]
        the_host = host(session)
        org = session.get(Server, world.ids["server"]).organisation_id  # type: ignore[union-attr]
        for i in range(n):
            row = server(
                session, _org(session, org), the_plan, ServerState.active, f"r{i}.rollout.social"
            )
            row.version, row.host_id, row.slot = version, the_host.id, i
            session.add(row)
            session.flush()
            ids.append(row.id)
        session.commit()
    return ids


def _org(session: Session, org_id: uuid.UUID) -> Any:
    from controlplane.tenancy.models import Organisation

    return session.get(Organisation, org_id)


def _release(client: TestClient, world: World, tag: str = "v4.5.2") -> None:
    r = client.post(
        "/api/v1/releases", json={"tag": tag, "security": True}, headers=world.headers("operator")
    )
    assert r.status_code == 201, r.text


def _spec(ids: list[uuid.UUID], **kw: Any) -> dict[str, Any]:
    return {
        "target": "v4.5.2",
        "selector": {"servers": [str(i) for i in ids]},
        "waves": [1, 2, "100%"],
        "concurrency": 2,
        **kw,
    }


def _start(client: TestClient, world: World, spec: dict[str, Any]) -> uuid.UUID:
    r = client.post("/api/v1/rollouts", json=spec, headers=world.headers("operator"))
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


def _advance(engine: Engine, rollout_id: uuid.UUID, now: datetime, probe: Any = None) -> Rollout:
    with Session(engine, expire_on_commit=False) as session:
        rollout = rollout_engine.advance(session, rollout_id, now, probe)
        session.commit()
    assert rollout is not None
    return rollout


def _targets(engine: Engine, rollout_id: uuid.UUID) -> list[RolloutTarget]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(RolloutTarget)
                .where(RolloutTarget.rollout_id == rollout_id)
                .order_by(col(RolloutTarget.wave), col(RolloutTarget.position))
            ).all()
        )


def _finish_jobs(
    engine: Engine,
    fail: set[uuid.UUID] = frozenset(),  # type: ignore[assignment]
    only: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """What the upgrade job records when it ends: success on the new
    version, or failure with the server rolled back to the old one. Every
    pending job, or only the one of server `only`."""
    finished = []
    with Session(engine) as session:
        for job in session.exec(select(Job).where(Job.state == JobState.pending)).all():
            if only is not None and job.server_id != only:
                continue
            srv = session.get(Server, job.server_id)
            assert srv is not None
            srv.state = ServerState.active
            if job.server_id in fail:
                job.state, job.error = JobState.failed, "finish_rollback: rolled back to v4.5.1"
            else:
                job.state, srv.version = JobState.succeeded, job.params["version"].lstrip("v")
            session.add_all([job, srv])
            finished.append(srv.id)
        session.commit()
    return finished


def test_release_catalogue(client: TestClient, world: World) -> None:
    ops = world.headers("operator")
    assert client.post("/api/v1/releases", json={"tag": "v4.5.2"}, headers=ops).status_code == 201
    again = client.post("/api/v1/releases", json={"tag": "v4.5.2"}, headers=ops)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    bad = client.post("/api/v1/releases", json={"tag": "4.5.2"}, headers=ops)
    assert (bad.status_code, bad.json()["type"]) == (422, "urn:herd:problem:invalid-input")
    document = {
        "series": [{"series": "4.4", "end_of_support": "2020-01-01"}],
        "releases": [{"tag": "v4.4.8", "security": True}, {"tag": "v4.5.2"}],
    }
    first = client.post("/api/v1/releases/import", json=document, headers=ops).json()
    assert (first["created"], first["unchanged"]) == (["v4.4.8"], ["v4.5.2"])
    second = client.post("/api/v1/releases/import", json=document, headers=ops).json()
    assert second["created"] == []
    r = client.put(
        "/api/v1/releases/series",
        json={"series": "4.5", "end_of_support": "2099-12-31"},
        headers=ops,
    )
    assert r.status_code == 200, r.text
    listed = client.get("/api/v1/releases", headers=ops).json()
    assert [(x["tag"], x["supported"]) for x in listed] == [("v4.5.2", True), ("v4.4.8", False)]


def test_maintenance_windows(client: TestClient, world: World) -> None:
    path = f"/api/v1/organisations/{world.ids['org']}/maintenance-windows"
    body = {"windows": [{"weekday": 2, "start": "03:00", "duration_minutes": 120}]}
    r = client.put(path, json=body, headers=world.headers("admin"))
    assert r.status_code == 200, r.text
    got = client.get(path, headers=world.headers("viewer")).json()
    assert got["windows"][0]["start"] == "03:00"
    foreign = {
        "windows": [
            {"weekday": 1, "start": "01:00", "duration_minutes": 60, "server_id": str(uuid.uuid4())}
        ]
    }
    assert client.put(path, json=foreign, headers=world.headers("admin")).status_code == 422
    bad = {"windows": [{"weekday": 8, "start": "25:00", "duration_minutes": 0}]}
    r = client.put(path, json=bad, headers=world.headers("admin"))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


def test_dry_run_and_bad_specs(client: TestClient, engine: Engine, world: World) -> None:
    ids = _fleet(engine, world, 6)
    _release(client, world)
    ops = world.headers("operator")
    r = client.post("/api/v1/rollouts/plan", json=_spec(ids, failure_budget="20%"), headers=ops)
    assert r.status_code == 200, r.text
    plan_out = r.json()
    assert [w["size"] for w in plan_out["waves"]] == [1, 2, 3]
    assert plan_out["servers"][0]["server_id"] == str(ids[0])  # the canary
    assert plan_out["failure_budget"] == 1
    for spec, status in [
        (_spec(ids, target="v9.9.9"), 404),
        (_spec(ids, waves=[]), 422),
        (_spec(ids, waves=["150%"]), 422),
        (_spec(ids, failure_budget="lots"), 422),
        ({**_spec(ids), "selector": {}}, 422),
        ({**_spec(ids), "surprise": 1}, 422),
    ]:
        r = client.post("/api/v1/rollouts", json=spec, headers=ops)
        assert r.status_code == status, (spec, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    with Session(engine) as session:
        assert session.exec(select(Rollout)).first() is None


def test_waves_in_order_within_the_cap_with_soak_and_notices(
    client: TestClient, engine: Engine, world: World, mailbox: Mailbox
) -> None:
    ids = _fleet(engine, world, 6)
    with Session(engine) as session:  # one already there: skipped, not counted
        done = session.get(Server, ids[5])
        assert done is not None
        done.version = "4.5.2"
        session.add(done)
        session.commit()
    _release(client, world)
    rollout_id = _start(client, world, _spec(ids, soak_seconds=600))
    probed: list[str] = []

    def probe(srv: Server, _host: object, tag: str) -> tuple[bool, str]:
        probed.append(srv.domain)
        return True, "healthy"

    now = NOW
    seen_waves = []
    for _ in range(20):
        rollout = _advance(engine, rollout_id, now, probe)
        running = [t for t in _targets(engine, rollout_id) if t.state == TargetState.running]
        assert len(running) <= 2  # the concurrency cap
        if running:
            seen_waves.append(sorted({t.wave for t in running}))
        if rollout.state == RolloutState.completed:
            break
        _finish_jobs(engine)
        now += timedelta(minutes=5)
    assert rollout.state == RolloutState.completed
    # Waves of 1, 2 and 2 (the skipped server is not counted), each within the cap.
    assert seen_waves == [[0], [1], [2]]
    targets = _targets(engine, rollout_id)
    assert {t.server_id: t.state for t in targets}[ids[5]] == TargetState.skipped
    assert sum(t.state == TargetState.succeeded for t in targets) == 5
    with Session(engine) as session:
        jobs = session.exec(select(Job)).all()
        assert sorted(j.server_id for j in jobs if j.kind == "upgrade") == sorted(ids[:5])
        actions = [a.action for a in session.exec(select(AuditEntry)).all()]
    assert actions.count("rollout.notice") == 1  # one organisation, one notice
    assert actions.count("rollout.server_upgraded") == 5
    assert len(probed) == 5  # every upgraded server gated after its wave
    # One notice to the owners and admins, then one message per server.
    messages = mailbox.wait_for(1 + 5)
    owner = [m["Subject"] for m in mailbox.to("owner@org-a.example-herd.org")]
    assert owner[0] == "Scheduled maintenance: Mastodon v4.5.2"
    assert sum("Maintenance done" in s for s in owner) == 5
    assert len(messages) == 6
    assert len(mailbox.to("admin@org-a.example-herd.org")) == 6


def test_soak_holds_the_next_wave(client: TestClient, engine: Engine, world: World) -> None:
    ids = _fleet(engine, world, 3)
    _release(client, world)
    rollout_id = _start(client, world, _spec(ids, soak_seconds=3600))
    _advance(engine, rollout_id, NOW)
    _finish_jobs(engine)
    _advance(engine, rollout_id, NOW + timedelta(minutes=1))  # canary done: soak starts
    _advance(engine, rollout_id, NOW + timedelta(minutes=59))
    assert _finish_jobs(engine) == []
    _advance(engine, rollout_id, NOW + timedelta(minutes=62))
    assert len(_finish_jobs(engine)) == 2


def test_canary_failure_halts_before_wave_two(
    client: TestClient, engine: Engine, world: World
) -> None:
    ids = _fleet(engine, world, 4)
    _release(client, world)
    rollout_id = _start(client, world, _spec(ids))
    _advance(engine, rollout_id, NOW)
    _finish_jobs(engine, fail={ids[0]})
    rollout = _advance(engine, rollout_id, NOW + timedelta(minutes=1))
    assert rollout.state == RolloutState.halted
    assert rollout.state_reason is not None
    assert rollout.state_reason.startswith("failure budget spent: 1 server(s) failed, 0 tolerated")
    _advance(engine, rollout_id, NOW + timedelta(minutes=2))
    states = [t.state for t in _targets(engine, rollout_id)]
    assert states == [TargetState.failed] + [TargetState.pending] * 3
    r = client.get(f"/api/v1/rollouts/{rollout_id}", headers=world.headers("operator")).json()
    assert (r["state"], r["failures"]) == ("halted", 1)
    # A halted rollout is not resumed (its budget stays spent); it can be aborted.
    ops = world.headers("operator")
    assert client.post(f"/api/v1/rollouts/{rollout_id}/resume", headers=ops).status_code == 409
    assert (
        client.post(f"/api/v1/rollouts/{rollout_id}/abort", headers=ops).json()["state"]
        == "aborted"
    )


def test_the_budget_halts_exactly_when_spent(
    client: TestClient, engine: Engine, world: World
) -> None:
    ids = _fleet(engine, world, 8)
    _release(client, world)
    # Two failures tolerated, one server at a time: the third failure halts.
    rollout_id = _start(
        client, world, _spec(ids, waves=[1, "100%"], concurrency=1, failure_budget=2)
    )
    failing = {ids[1], ids[3], ids[4], ids[6]}
    now = NOW
    for _ in range(20):
        rollout = _advance(engine, rollout_id, now)
        if rollout.state != RolloutState.running:
            break
        _finish_jobs(engine, fail=failing)
        now += timedelta(minutes=1)
    assert rollout.state == RolloutState.halted
    states = {t.server_id: t.state for t in _targets(engine, rollout_id)}
    # ids[1] and ids[3] were tolerated; ids[4] spent the budget; nothing after it started.
    assert [states[i] for i in ids] == [
        TargetState.succeeded,
        TargetState.failed,
        TargetState.succeeded,
        TargetState.failed,
        TargetState.failed,
        TargetState.pending,
        TargetState.pending,
        TargetState.pending,
    ]


def test_windows_hold_servers_until_they_open(
    client: TestClient, engine: Engine, world: World
) -> None:
    ids = _fleet(engine, world, 2)
    _release(client, world)
    path = f"/api/v1/organisations/{world.ids['org']}/maintenance-windows"
    # Tuesday 03:00-05:00 Berlin = 02:00-04:00 UTC in January.
    body = {"windows": [{"weekday": 2, "start": "03:00", "duration_minutes": 120}]}
    assert client.put(path, json=body, headers=world.headers("admin")).status_code == 200
    with Session(engine) as session:
        org = _org(session, world.ids["org"])
        org.timezone = "Europe/Berlin"
        session.add(org)
        session.commit()
    rollout_id = _start(client, world, _spec(ids, waves=["100%"]))
    _advance(engine, rollout_id, NOW)
    _advance(engine, rollout_id, datetime(2026, 1, 6, 1, 59, tzinfo=UTC))
    assert all(t.state == TargetState.pending for t in _targets(engine, rollout_id))
    _advance(engine, rollout_id, datetime(2026, 1, 6, 2, 0, tzinfo=UTC))
    assert all(t.state == TargetState.running for t in _targets(engine, rollout_id))


def test_urgent_goes_outside_windows_after_notice(
    client: TestClient, engine: Engine, world: World
) -> None:
    ids = _fleet(engine, world, 1)
    _release(client, world)
    path = f"/api/v1/organisations/{world.ids['org']}/maintenance-windows"
    body = {"windows": [{"weekday": 2, "start": "03:00", "duration_minutes": 60}]}
    client.put(path, json=body, headers=world.headers("admin"))
    rollout_id = _start(client, world, _spec(ids, waves=["100%"], urgent=True, notice_seconds=1800))
    _advance(engine, rollout_id, NOW)  # notice sent now
    _advance(engine, rollout_id, NOW + timedelta(minutes=29))
    assert _targets(engine, rollout_id)[0].state == TargetState.pending
    _advance(engine, rollout_id, NOW + timedelta(minutes=30))
    assert _targets(engine, rollout_id)[0].state == TargetState.running


def test_repeated_ticks_and_pause_never_start_a_server_twice(
    client: TestClient, engine: Engine, world: World
) -> None:
    ids = _fleet(engine, world, 3)
    _release(client, world)
    rollout_id = _start(client, world, _spec(ids, waves=["100%"], concurrency=3))
    for minute in range(3):  # a restarted engine ticks again and again
        _advance(engine, rollout_id, NOW + timedelta(minutes=minute))
    ops = world.headers("operator")
    assert (
        client.post(f"/api/v1/rollouts/{rollout_id}/pause", headers=ops).json()["state"] == "paused"
    )
    _finish_jobs(engine)
    _advance(engine, rollout_id, NOW + timedelta(minutes=5))  # paused: outcomes still read
    assert all(t.state == TargetState.succeeded for t in _targets(engine, rollout_id))
    assert client.post(f"/api/v1/rollouts/{rollout_id}/resume", headers=ops).status_code == 200
    rollout = _advance(engine, rollout_id, NOW + timedelta(minutes=6))
    assert rollout.state == RolloutState.completed
    with Session(engine) as session:
        assert len(session.exec(select(Job).where(Job.kind == "upgrade")).all()) == 3
    listed = client.get(f"/api/v1/rollouts/{rollout_id}/servers", headers=ops).json()["items"]
    assert {i["domain"] for i in listed} == {f"r{i}.rollout.social" for i in range(3)}
    assert client.post(f"/api/v1/rollouts/{rollout_id}/pause", headers=ops).status_code == 409


def _runs(engine: Engine) -> list[list[uuid.UUID]]:
    """The upgrade jobs' servers, grouped by the Ansible run they share."""
    runs: dict[str, list[uuid.UUID]] = {}
    with Session(engine) as session:
        for job in session.exec(select(Job).where(Job.kind == "upgrade")).all():
            leader = (job.params.get(SHARED_RUN_PARAM) or [str(job.id)])[0]
            runs.setdefault(leader, []).append(job.server_id)  # type: ignore[arg-type]
    return sorted(runs.values(), key=len)


def test_slots_freed_by_one_run_are_filled_together(
    client: TestClient, engine: Engine, world: World
) -> None:
    """The leader of a shared run ends first; the slot it frees waits for its
    mates (up to GATHER_SECONDS), so the next servers share one run again
    instead of each paying for an Ansible run of its own."""
    ids = _fleet(engine, world, 8)
    _release(client, world)
    rollout_id = _start(client, world, _spec(ids, waves=["100%"], concurrency=3))
    _advance(engine, rollout_id, NOW)
    first = [t.server_id for t in _targets(engine, rollout_id) if t.state == TargetState.running]
    assert _runs(engine) == [first]
    _finish_jobs(engine, only=first[0])
    _advance(engine, rollout_id, NOW + timedelta(seconds=5))
    assert sum(t.state == TargetState.running for t in _targets(engine, rollout_id)) == 2
    _finish_jobs(engine)
    _advance(engine, rollout_id, NOW + timedelta(seconds=10))
    second = [t.server_id for t in _targets(engine, rollout_id) if t.state == TargetState.running]
    assert len(second) == 3
    assert _runs(engine) == [first, second] or _runs(engine) == [second, first]
    # A mate that does not end (here: never) holds the freed slots only so long.
    _finish_jobs(engine, only=second[0])
    _advance(engine, rollout_id, NOW + timedelta(seconds=15))
    _advance(engine, rollout_id, NOW + timedelta(seconds=15 + rollout_engine.GATHER_SECONDS - 1))
    assert sum(t.state == TargetState.running for t in _targets(engine, rollout_id)) == 2
    _advance(engine, rollout_id, NOW + timedelta(seconds=15 + rollout_engine.GATHER_SECONDS))
    assert sum(t.state == TargetState.running for t in _targets(engine, rollout_id)) == 3
    # The end of the wave: fewer servers left than free slots, started at once.
    _finish_jobs(engine)
    rollout = _advance(engine, rollout_id, NOW + timedelta(minutes=2))
    assert [t.state for t in _targets(engine, rollout_id)].count(TargetState.succeeded) == 7
    _finish_jobs(engine)
    rollout = _advance(engine, rollout_id, NOW + timedelta(minutes=3))
    assert rollout.state == RolloutState.completed


@pytest.mark.parametrize("who", ["owner", "viewer"])
def test_customers_cannot_see_rollouts(client: TestClient, world: World, who: str) -> None:
    assert client.get("/api/v1/rollouts", headers=world.headers(who)).status_code == 403
