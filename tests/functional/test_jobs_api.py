"""Jobs through the API: created by lifecycle events, readable with their
steps and events, and streamed live as server-sent events."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from controlplane.fleet import placement
from controlplane.jobs.models import JobEvent
from controlplane.servers.models import Server
from tests import factories
from tests.factories import World


def test_approving_an_order_starts_a_provisioning_job(client: TestClient, world: World) -> None:
    sid = world.ids["requested_server"]
    approved = client.post(f"/api/v1/servers/{sid}/approve", headers=world.headers("operator"))
    assert approved.json()["state"] == "provisioning"
    jobs = client.get(f"/api/v1/servers/{sid}/jobs", headers=world.headers("viewer")).json()
    assert [j["kind"] for j in jobs["items"]] == ["provision"]
    detail = client.get(f"/api/v1/jobs/{jobs['items'][0]['id']}", headers=world.headers("viewer"))
    assert [s["name"] for s in detail.json()["steps"]] == [
        "reserve_host",
        "generate_secrets",
        "prepare_storage",
        "prepare_identity",
        "run_provision",
        "run_brand",
        "health_gate",
        "activate",
    ]
    assert {s["state"] for s in detail.json()["steps"]} == {"pending"}


def test_events_stream_then_end(client: TestClient, world: World, engine: Engine) -> None:
    job_id = world.ids["finished_job"]
    with Session(engine) as session:
        session.add(
            JobEvent(
                job_id=job_id,
                step="run_provision",
                host="h1",
                task="Migrate",
                status="changed",
                changed=True,
                duration_ms=1200,
            )
        )
        session.commit()
    with client.stream(
        "GET", f"/api/v1/jobs/{job_id}/stream", headers=world.headers("viewer")
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    frames = [f for f in body.split("\n\n") if f]
    tasks = [json.loads(f.split("data: ", 1)[1]) for f in frames if "event: task" in f]
    assert [t["task"] for t in tasks] == ["Install", "Migrate"]
    assert frames[-1] == 'event: end\ndata: {"state": "succeeded"}'


def test_placement_fills_the_least_loaded_host_and_never_shares_a_slot(engine: Engine) -> None:
    with Session(engine) as session:
        org = factories.organisation(session)
        plan = factories.plan(session)
        small = factories.host(session, "h-small")
        small.capacity = 1
        big = factories.host(session, "h-big")
        big.capacity = 3
        servers = [factories.server(session, org, plan) for _ in range(4)]
        places = []
        for server in servers:
            host = placement.place(session, server)
            places.append((host.name, server.slot))
        assert sorted(places) == [("h-big", 0), ("h-big", 1), ("h-big", 2), ("h-small", 0)]
        # Placing a placed server changes nothing.
        assert placement.place(session, servers[0]).id == servers[0].host_id
        extra = factories.server(session, org, plan)
        with pytest.raises(placement.NoCapacity):
            placement.place(session, extra)
        slot = placement.Slot(2)
        assert (slot.web_port, slot.streaming_port, slot.unix_user, slot.redis_db) == (
            3002,
            4002,
            "mastodon2",
            2,
        )
        session.rollback()


def test_two_placements_racing_for_the_last_slot_never_overfill_the_host(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        org, plan = factories.organisation(session), factories.plan(session)
        only = factories.host(session, "h-only")
        only.capacity = 1
        first, second = (factories.server(session, org, plan) for _ in range(2))
        session.commit()
        first_id, second_id = first.id, second.id
    chose, committed = threading.Event(), threading.Event()
    outcome: list[BaseException | tuple[str, int | None]] = []

    def race() -> None:
        # The later worker reads the candidates while the host still has
        # room, then everything after the other worker has committed.
        with Session(engine) as other:
            read = other.exec
            calls = 0

            def exec_after_first(*args: object, **kwargs: object) -> object:
                nonlocal calls
                calls += 1
                if calls == 2:
                    chose.set()
                    committed.wait(10)
                return read(*args, **kwargs)

            other.exec = exec_after_first  # type: ignore[method-assign]
            try:
                server = other.get(Server, second_id)
                assert server is not None
                host = placement.place(other, server)
                other.commit()
                outcome.append((host.name, server.slot))
            except (placement.NoCapacity, IntegrityError, OperationalError) as exc:
                outcome.append(exc)

    racer = threading.Thread(target=race)
    racer.start()
    assert chose.wait(10)
    with Session(engine) as session:
        server = session.get(Server, first_id)
        assert server is not None
        placement.place(session, server)
        session.commit()
    committed.set()
    racer.join(30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], placement.NoCapacity), outcome
    with Session(engine) as session:
        slots = session.exec(select(Server.slot).where(col(Server.slot).is_not(None))).all()
    assert slots == [0]
