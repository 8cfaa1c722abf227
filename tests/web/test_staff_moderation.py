"""Staff work the fleet moderation queue from the console: the open reports
of every staffed server by urgency, filters, the servers that cannot be
reached, and acting on a report, which reaches the Mastodon stand-in's admin
API with the person's own moderator token. Both databases."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.crypto import secret_box
from controlplane.moderation import queue
from controlplane.moderation.reports import ModerationFeed, ModerationReport
from controlplane.sqltypes import utcnow
from tests.factories import fingerprint
from tests.moderation.queue_support import (  # noqa: F401  (fixtures)
    ALICE,
    SPAMMER,
    TROLL,
    Fleet,
    fleet_fixture,
    report,
    standin_fixture,
)
from tests.web.helpers import csrf_of, sign_in

_ROW = re.compile(
    r'<tr id="report-([0-9a-f-]+)"[^>]*>\s*<th scope="row">(\d+)</th>(.*?)</tr>', re.DOTALL
)


def rows(page: httpx.Response) -> list[tuple[str, str, str]]:
    """(report id, Mastodon's id, the rest of the row) in the page's order."""
    assert page.status_code == 200, page.text
    return _ROW.findall(page.text)


def remote_ids(page: httpx.Response) -> list[str]:
    return [remote for _, remote, _ in rows(page)]


def next_page(page: httpx.Response) -> str:
    """Where the page's "Next page" link leads."""
    link = re.search(r'<a href="\?([^"]+)" rel="next">Next page', page.text)
    assert link is not None, "no next page"
    return "/staff/moderation?" + html.unescape(link.group(1))


def seed_rows(fleet: Fleet) -> dict[str, str]:
    """Open reports straight into Herd's copy: on the live server (60
    minutes to respond) and on the dead one (240), with one resolved; the
    dead server's pulls have been failing for an hour."""
    now = utcnow()
    made = {
        "41": (fleet.server_id, 90, "spam", "spammer"),  # due 30 min ago
        "42": (fleet.server_id, 30, "violation", "troll@elsewhere.example"),
        "43": (fleet.server_id, 5, "other", "spammer"),
        "44": (fleet.dead_server_id, 250, "legal", "someone"),  # due 10 min ago
        "45": (fleet.dead_server_id, 100, "spam", "else"),
    }
    ids: dict[str, str] = {}
    with Session(fleet.engine) as session:
        for remote, (server_id, age, category, acct) in made.items():
            row = ModerationReport(
                server_id=server_id,
                remote_id=remote,
                category=category,
                comment=f"comment on {remote}",
                target_account_id=remote + "0",
                target_acct=acct,
                created_at=now - timedelta(minutes=age),
                updated_at=now - timedelta(minutes=age),
            )
            session.add(row)
            ids[remote] = str(row.id)
        session.add(
            ModerationReport(
                server_id=fleet.server_id,
                remote_id="40",
                target_account_id="400",
                target_acct="gone",
                created_at=now - timedelta(days=2),
                updated_at=now - timedelta(days=1),
                action_taken=True,
                action_taken_at=now - timedelta(days=1),
            )
        )
        session.add(
            ModerationFeed(
                server_id=fleet.dead_server_id,
                webhook_secret_encrypted=secret_box().encrypt("s"),
                failing_since=now - timedelta(hours=1),
                last_error="ConnectError: connection refused",
            )
        )
        session.commit()
    return ids


def test_staff_see_the_queue_by_urgency_with_filters(web: TestClient, fleet: Fleet) -> None:
    sign_in(web, fleet.tokens["carol"])  # staff; access on a server is not needed to read
    empty = web.get("/staff/moderation")
    assert rows(empty) == []
    assert "No open reports on any staffed server" in empty.text
    assert '<a href="/staff/moderation">Moderation</a>' in empty.text  # in the navigation

    ids = seed_rows(fleet)
    page = web.get("/staff/moderation")
    listed = rows(page)
    assert [remote for _, remote, _ in listed] == ["41", "44", "42", "43", "45"]
    by_remote = {remote: row for _, remote, row in listed}
    assert "<strong" in by_remote["41"]
    assert "Overdue</strong> by 30 min" in by_remote["41"]
    assert "Overdue</strong> by 10 min" in by_remote["44"]
    for remote in ("42", "43", "45"):
        assert "Overdue" not in by_remote[remote]
    assert "In 29 min" in by_remote["42"]  # 30 minutes less the seconds since
    assert "1 h 30 min" in by_remote["41"]  # its age
    assert "4 h 10 min" in by_remote["44"]
    assert fleet.standin.domain in by_remote["41"]
    assert "troll@elsewhere.example" in by_remote["42"]
    assert "comment on 42" in by_remote["42"]
    assert "nobody" in by_remote["42"]
    assert "<caption>Open reports, most urgent first</caption>" in page.text
    assert "5 open reports." in page.text
    # Every control in a row has a label that names the report.
    for report_id in ids.values():
        assert f'<label for="kind-{report_id}">' in page.text
        assert f'<label for="text-{report_id}">' in page.text
        assert f'action="/staff/moderation/{report_id}/resolve"' in page.text
    # The dead server is named, with since when; its reports may be missing.
    assert re.search(r"not reachable since \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", page.text)
    assert "ConnectError: connection refused" in page.text

    # Page by page through the "Next page" link, which keeps the filters
    # and the page size; each report once, in the same order.
    first = web.get("/staff/moderation", params={"limit": "2"})
    assert remote_ids(first) == ["41", "44"]
    assert "The 2 most urgent of 5 open reports." in first.text
    second = web.get(next_page(first))
    assert remote_ids(second) == ["42", "43"]
    assert "2 more of 5 open reports, by urgency." in second.text
    third = web.get(next_page(second))
    assert remote_ids(third) == ["45"]
    assert 'rel="next"' not in third.text
    assert 'rel="next"' not in page.text  # five fit on the default page
    overdue_first = web.get("/staff/moderation", params={"overdue": "1", "limit": "1"})
    assert remote_ids(overdue_first) == ["41"]
    overdue_rest = web.get(next_page(overdue_first))
    assert remote_ids(overdue_rest) == ["44"]
    assert 'rel="next"' not in overdue_rest.text
    forged = web.get("/staff/moderation", params={"cursor": "not-a-cursor"})
    assert forged.status_code == 422
    assert "the cursor is not one this API handed out" in forged.text

    assert remote_ids(web.get("/staff/moderation", params={"overdue": "1"})) == ["41", "44"]
    dead_only = web.get("/staff/moderation", params={"server": str(fleet.dead_server_id)})
    assert remote_ids(dead_only) == ["44", "45"]
    assert f'<option value="{fleet.dead_server_id}" selected>' in dead_only.text
    own = web.get("/staff/moderation", params={"organisation": str(fleet.org_id)})
    assert len(rows(own)) == 5
    other = web.get("/staff/moderation", params={"organisation": str(fleet.other_org_id)})
    assert rows(other) == []
    assert "No open report matches these filters" in other.text
    # A malformed id is no filter at all, not an error.
    assert len(rows(web.get("/staff/moderation", params={"server": "nonsense"}))) == 5

    # Organisation members are not staff: refused as on every staff page.
    for who in ("viewer", "outsider"):
        web.cookies.clear()
        sign_in(web, fleet.tokens[who])
        refused = web.get("/staff/moderation")
        assert refused.status_code == 403
        assert "comment on 41" not in refused.text
        assert 'href="/staff/moderation"' not in refused.text


def test_staff_act_on_reports_from_the_page_and_the_server_changes(
    web: TestClient, engine: Engine, fleet: Fleet
) -> None:
    fleet.standin.seed(
        [
            report("30", age=timedelta(minutes=20)),
            report("31", SPAMMER),
            report("32", TROLL, age=timedelta(minutes=10)),
        ]
    )
    queue.pull_all(engine)
    sign_in(web, fleet.tokens["alice"])
    page = web.get("/staff/moderation", params={"overdue": ""})
    ids = {remote: report_id for report_id, remote, _ in rows(page)}
    assert list(ids) == ["30", "32", "31"]
    token = csrf_of(page)

    def post(report: str, what: str, **data: str) -> httpx.Response:
        return web.post(
            f"/staff/moderation/{ids[report]}/{what}",
            data={"csrf_token": token, "back": "overdue=&server=" + str(fleet.server_id)} | data,
            follow_redirects=False,
        )

    # A form from no page of this session changes nothing.
    before, on_server = fingerprint(engine), fleet.standin.report("30")
    forged = web.post(f"/staff/moderation/{ids['30']}/resolve", data={"back": ""})
    assert forged.status_code == 403
    assert "Form expired" in forged.text
    assert fleet.standin.report("30") == on_server
    assert fingerprint(engine) == before

    assigned = post("30", "assign")
    assert assigned.status_code == 303
    # Back to the queue with the filters kept, and nothing else.
    assert assigned.headers["location"] == f"/staff/moderation?server={fleet.server_id}"
    assert fleet.standin.report("30")["assigned_account_id"] == ALICE
    after = web.get(assigned.headers["location"])
    assert f"Report 30 on {fleet.standin.domain} assigned to you." in after.text
    row_30 = next(row for _, remote, row in rows(after) if remote == "30")
    assert "alice" in row_30
    assert f'action="/staff/moderation/{ids["30"]}/unassign"' in row_30

    resolved = post("30", "resolve")
    assert resolved.status_code == 303
    assert fleet.standin.report("30")["action_taken"] is True
    shown = web.get(resolved.headers["location"])
    assert remote_ids(shown) == ["32", "31"]
    # It has left the list; the page offers to reopen it.
    assert f'action="/staff/moderation/{ids["30"]}/reopen"' in shown.text
    assert post("30", "reopen").status_code == 303
    assert fleet.standin.report("30")["action_taken"] is False
    assert remote_ids(web.get("/staff/moderation")) == ["30", "32", "31"]

    # Bad input: nothing is sent.
    assert post("31", "action", kind="explode").status_code == 422
    on_server, before = fleet.standin.report("31"), fingerprint(engine)
    assert post("31", "escalate").status_code == 404
    assert fleet.standin.report("31") == on_server
    assert fingerprint(engine) == before
    assert not fleet.standin.account(SPAMMER).get("suspended")

    acted = post("31", "action", kind="suspend", text="Spam, again.")
    assert acted.status_code == 303
    spammer = fleet.standin.account(SPAMMER)
    assert spammer["suspended"] is True
    assert spammer["actions"][-1]["text"] == "Spam, again."
    assert spammer["actions"][-1]["by"] == ALICE
    assert "account suspended" in web.get(acted.headers["location"]).text
    queue.pull_all(engine)  # Mastodon resolved every report about the account
    assert remote_ids(web.get("/staff/moderation")) == ["32"]

    # Staff without moderator access on that server: the 409 as a page, and
    # neither the server nor Herd changes.
    web.cookies.clear()
    sign_in(web, fleet.tokens["carol"])
    token = csrf_of(web.get("/staff/moderation"))
    on_server, before = fleet.standin.report("32"), fingerprint(engine)
    for what, data in (("resolve", {}), ("action", {"kind": "silence"}), ("assign", {})):
        refused = post("32", what, **data)
        assert refused.status_code == 409, what
        assert "No moderator access on this server" in refused.text
        assert f"no granted moderator access on {fleet.standin.domain}" in refused.text
    assert fleet.standin.report("32") == on_server
    assert fingerprint(engine) == before

    # Someone of an organisation cannot act, even with a valid form.
    web.cookies.clear()
    sign_in(web, fleet.tokens["viewer"])
    token = csrf_of(web.get(f"/o/{fleet.org_id}/servers"))
    assert post("32", "resolve").status_code == 403
    assert fleet.standin.report("32") == on_server
