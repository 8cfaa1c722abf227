"""The fleet moderation queue against the Mastodon stand-in's real web
process (its admin API answers with Mastodon's JSON shapes): reports come in
by pull and by signed webhook, staff act on them from Herd and the server
changes, and who may do what. Both databases."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.moderation import mastodon_admin, queue
from controlplane.moderation.reports import ModerationFeed, ModerationReport
from controlplane.sqltypes import utcnow
from provisioning import moderation_tasks
from provisioning.celery_app import celery_app
from tests.factories import fingerprint
from tests.moderation.queue_support import (  # noqa: F401  (fixtures)
    ALICE,
    SPAMMER,
    TROLL,
    Fleet,
    fleet_fixture,
    report,
    stamp,
    standin_fixture,
)

PROBLEM = "application/problem+json"


def queue_of(client: TestClient, fleet: Fleet, who: str = "alice", **query: str) -> dict:
    answer = client.get("/api/v1/moderation/queue", params=query, headers=fleet.headers(who))
    assert answer.status_code == 200, answer.text
    return answer.json()


def stored(engine: Engine) -> dict[str, ModerationReport]:
    with Session(engine) as session:
        return {r.remote_id: r for r in session.exec(select(ModerationReport)).all()}


def deliver(
    client: TestClient, fleet: Fleet, body: bytes, signature: str | None
) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature"] = signature
    answer = client.post(
        f"/api/v1/moderation/webhooks/{fleet.server_id}", content=body, headers=headers
    )
    return answer.status_code, answer.json()


def secret_of(fleet: Fleet) -> str:
    with Session(fleet.engine) as session:
        secret = queue.webhook_secret(session, fleet.server_id)
        session.commit()
    return secret


def test_pull_fills_the_queue_by_urgency_and_names_unreachable_servers(
    client: TestClient, engine: Engine, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two reports a page, so the pull has to follow Mastodon's Link header.
    monkeypatch.setattr(mastodon_admin, "PAGE_LIMIT", 2)
    fleet.standin.seed(
        [
            report("10", age=timedelta(minutes=5), category="spam", comment="buy pills"),
            report("11", age=timedelta(minutes=90)),  # due after 60: overdue
            report("12", TROLL, age=timedelta(minutes=30)),
            report("13", age=timedelta(minutes=200), action_taken=True),  # resolved
            report("14", age=timedelta(minutes=61)),
        ]
    )

    # The beat task, as the worker runs it.
    schedule = celery_app.conf.beat_schedule["moderation"]
    assert schedule["task"] == moderation_tasks.PULL_TASK
    assert moderation_tasks.pull_reports() == {"servers": 2, "reports": 4, "failed": 1}

    with Session(engine) as session:
        dead_feed = session.get(ModerationFeed, fleet.dead_server_id)
        assert dead_feed is not None
        assert dead_feed.failing_since is not None  # and it stopped nothing
    listed = queue_of(client, fleet)
    assert [i["report"]["remote_id"] for i in listed["items"]] == ["11", "14", "12", "10"]
    first = listed["items"][0]
    assert first["overdue"] is True
    assert first["response_minutes"] == 60
    assert first["age_minutes"] in (89, 90)
    assert first["minutes_to_due"] in (-30, -31)
    assert first["server_domain"] == fleet.standin.domain
    newest = listed["items"][-1]
    assert newest["overdue"] is False
    assert newest["report"]["category"] == "spam"
    assert newest["report"]["comment"] == "buy pills"
    assert newest["report"]["target_acct"] == "spammer"
    assert listed["items"][2]["report"]["target_acct"] == "troll@elsewhere.example"
    # The server that did not answer is named, with since when.
    [dead] = listed["unreachable"]
    assert dead["server_id"] == str(fleet.dead_server_id)
    assert dead["since"]
    assert "ConnectError" in dead["error"]

    assert listed["total"] == 4
    assert listed["next_cursor"] is None
    # Page by page, in the same order, each report once; total counts all.
    first_page = queue_of(client, fleet, limit="3")
    assert [i["report"]["remote_id"] for i in first_page["items"]] == ["11", "14", "12"]
    assert first_page["total"] == 4
    last_page = queue_of(client, fleet, limit="3", cursor=first_page["next_cursor"])
    assert [i["report"]["remote_id"] for i in last_page["items"]] == ["10"]
    assert last_page["total"] == 4
    assert last_page["next_cursor"] is None
    overdue_page = queue_of(client, fleet, overdue="true", limit="1")
    assert [i["report"]["remote_id"] for i in overdue_page["items"]] == ["11"]
    overdue_rest = queue_of(
        client, fleet, overdue="true", limit="1", cursor=overdue_page["next_cursor"]
    )
    assert [i["report"]["remote_id"] for i in overdue_rest["items"]] == ["14"]
    assert overdue_rest["next_cursor"] is None
    forged = client.get(
        "/api/v1/moderation/queue",
        params={"cursor": "not-a-cursor"},
        headers=fleet.headers("alice"),
    )
    assert forged.status_code == 422
    assert forged.headers["content-type"].startswith(PROBLEM)
    assert "cursor" in forged.json()["detail"]

    overdue = queue_of(client, fleet, overdue="true")
    assert [i["report"]["remote_id"] for i in overdue["items"]] == ["11", "14"]
    assert queue_of(client, fleet, server_id=str(fleet.server_id))["total"] == 4
    assert queue_of(client, fleet, server_id=str(fleet.dead_server_id))["total"] == 0
    assert queue_of(client, fleet, organisation_id=str(fleet.other_org_id))["items"] == []

    # Resolved on the server itself (no webhook): the next pull notices,
    # and a second pull changes nothing.
    with fleet.standin.data() as data:
        next(r for r in data["reports"] if r["id"] == "10").update(
            action_taken=True,
            action_taken_at=stamp(utcnow() - timedelta(minutes=5)),
            updated_at=stamp(utcnow()),
        )
    queue.pull_all(engine)
    before = stored(engine)
    queue.pull_all(engine)
    assert {k: v.updated_at for k, v in stored(engine).items()} == {
        k: v.updated_at for k, v in before.items()
    }
    assert before["10"].action_taken
    assert before["10"].first_action_at is not None
    assert [i["report"]["remote_id"] for i in queue_of(client, fleet)["items"]] == [
        "11",
        "14",
        "12",
    ]
    with Session(engine) as session:
        feed = session.get(ModerationFeed, fleet.server_id)
        assert feed is not None
        assert feed.failing_since is None
        assert feed.last_success_at


def test_a_signed_webhook_brings_a_report_in_at_once_and_stale_copies_change_nothing(
    client: TestClient, engine: Engine, fleet: Fleet
) -> None:
    secret = secret_of(fleet)
    fleet.standin.seed([report("20", age=timedelta(minutes=10))])
    created = {
        "event": "report.created",
        "created_at": stamp(utcnow()),
        "object": fleet.standin.entity("20"),
    }
    body = json.dumps(created).encode()

    # Refused, and nothing stored: a wrong signature, none, a wrong secret,
    # an unknown server, an oversize body.
    before = fingerprint(engine)
    status, problem = deliver(client, fleet, body, "sha256=" + "0" * 64)
    assert (status, problem["type"]) == (400, "urn:herd:problem:bad-signature")
    assert deliver(client, fleet, body, None)[0] == 400
    assert deliver(client, fleet, body, queue.sign(body, "not-the-secret"))[0] == 400
    assert deliver(client, fleet, body + b" ", queue.sign(body, secret))[0] == 400
    unknown = client.post(
        f"/api/v1/moderation/webhooks/{fleet.dead_server_id}",
        content=body,
        headers={"X-Hub-Signature": queue.sign(body, secret)},
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    huge = b"{" + b" " * 300_000 + b"}"
    assert deliver(client, fleet, huge, queue.sign(huge, secret))[0] == 413
    assert fingerprint(engine) == before

    status, answer = deliver(client, fleet, body, queue.sign(body, secret))
    assert status == 200
    assert answer["event"] == "report.created"
    assert answer["stored"]
    [item] = queue_of(client, fleet)["items"]  # no pull has run
    assert item["report"]["remote_id"] == "20"
    assert item["report"]["reporter_acct"] == "reporter"

    # The report is assigned and resolved on the server; the update arrives,
    # then the old report.created again, late: the newest state stays.
    with fleet.standin.data() as data:
        record = next(r for r in data["reports"] if r["id"] == "20")
        later = stamp(utcnow() + timedelta(minutes=1))
        record.update(
            assigned_account_id=ALICE, action_taken=True, action_taken_at=later, updated_at=later
        )
    updated = json.dumps(
        {"event": "report.updated", "created_at": later, "object": fleet.standin.entity("20")}
    ).encode()
    assert deliver(client, fleet, updated, queue.sign(updated, secret))[0] == 200
    assert deliver(client, fleet, updated, queue.sign(updated, secret))[0] == 200
    assert deliver(client, fleet, body, queue.sign(body, secret))[0] == 200
    [row] = stored(engine).values()
    assert row.action_taken
    assert row.assigned_acct == "alice"
    assert row.first_action_at is not None
    assert queue_of(client, fleet)["items"] == []

    # Other events are acknowledged and dropped.
    other = json.dumps({"event": "account.created", "object": {"id": "9"}}).encode()
    status, answer = deliver(client, fleet, other, queue.sign(other, secret))
    assert status == 200
    assert answer["stored"] is False
    assert len(stored(engine)) == 1


def test_actions_from_herd_reach_the_server(
    client: TestClient, engine: Engine, fleet: Fleet
) -> None:
    fleet.standin.seed(
        [report("30", age=timedelta(minutes=20)), report("31", SPAMMER), report("32", TROLL)]
    )
    queue.pull_all(engine)
    ids = {i["report"]["remote_id"]: i["report"]["id"] for i in queue_of(client, fleet)["items"]}

    def post(who: str, remote: str, what: str, body: dict | None = None) -> dict:
        answer = client.post(
            f"/api/v1/moderation/reports/{ids[remote]}/{what}",
            json=body,
            headers=fleet.headers(who),
        )
        return {"status": answer.status_code, "content_type": answer.headers["content-type"]} | (
            answer.json()
        )

    assigned = post("alice", "30", "assign")
    assert assigned["status"] == 200
    assert assigned["assigned_acct"] == "alice"
    assert fleet.standin.report("30")["assigned_account_id"] == ALICE
    assert assigned["first_action_at"] is not None
    resolved = post("alice", "30", "resolve")
    assert resolved["action_taken"] is True
    assert fleet.standin.report("30")["action_taken"] is True
    assert post("alice", "30", "reopen")["action_taken"] is False
    assert fleet.standin.report("30")["action_taken"] is False
    assert post("alice", "30", "unassign")["assigned_acct"] is None

    acted = post("alice", "31", "action", {"type": "suspend", "text": "Spam, again."})
    assert acted["status"] == 200
    assert acted["action_taken"] is True
    suspended = fleet.standin.account(SPAMMER)
    assert suspended["suspended"] is True
    assert suspended["actions"][-1] | {"at": ""} == {
        "type": "suspend",
        "report_id": "31",
        "at": "",
        "by": ALICE,
        "text": "Spam, again.",
    }
    # Mastodon resolved every open report about the account: 30 too.
    assert fleet.standin.report("30")["action_taken"] is True
    queue.pull_all(engine)
    assert [i["report"]["remote_id"] for i in queue_of(client, fleet)["items"]] == ["32"]

    # Staff without access on that server: 409, and the server unchanged.
    before = fleet.standin.report("32")
    for who in ("bob", "carol"):
        refused = post(who, "32", "resolve")
        assert (refused["status"], refused["content_type"]) == (409, PROBLEM)
        assert refused["title"] == "No moderator access on this server"
    assert post("carol", "32", "action", {"type": "silence"})["status"] == 409
    assert fleet.standin.report("32") == before
    # Bad input: 422 and nothing sent.
    assert post("alice", "32", "action", {"type": "explode"})["status"] == 422
    assert fleet.standin.report("32") == before

    # Organisation members and other tenants are not staff.
    for who in ("viewer", "outsider"):
        answer = client.get("/api/v1/moderation/queue", headers=fleet.headers(who))
        assert (answer.status_code, answer.headers["content-type"]) == (403, PROBLEM)
        assert post(who, "32", "resolve")["status"] == 403
    assert fleet.standin.report("32") == before

    with Session(engine) as session:
        actions = [
            (e.action, e.details["report"], e.organisation_id)
            for e in session.exec(
                select(AuditEntry)
                .where(AuditEntry.target_type == "moderation_report")
                .order_by(AuditEntry.at)
            ).all()
        ]
    assert actions == [
        ("moderation.report.assign_to_self", "30", fleet.org_id),
        ("moderation.report.resolve", "30", fleet.org_id),
        ("moderation.report.reopen", "30", fleet.org_id),
        ("moderation.report.unassign", "30", fleet.org_id),
        ("moderation.account.action", "31", fleet.org_id),
    ]
    assert all(r.synced_at <= utcnow() for r in stored(engine).values())
