"""The server page's backups section: the list the last `backups` job
found, and the refresh button for those who may use it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.backups.helpers import PRE_UPGRADE, backups_jobs, listed, place, report
from tests.factories import World
from tests.web.helpers import csrf_of, sign_in


def test_the_server_page_lists_backups_and_refreshes(
    web: TestClient, world: World, engine: Engine
) -> None:
    server_id = world.ids["server"]
    sign_in(web, world.tokens["viewer"])
    page = web.get(f"/servers/{server_id}")
    assert page.status_code == 200
    assert 'id="backups-h"' in page.text
    assert "Herd has not looked for backups on the host yet." in page.text
    assert "Refresh backups" not in page.text  # a viewer may not

    listed(engine, server_id, report())
    page = web.get(f"/servers/{server_id}")
    assert f'data-backup="{PRE_UPGRADE}"' in page.text
    row = page.text.split(f'data-backup="{PRE_UPGRADE}"', 1)[1].split("</tr>", 1)[0]
    assert "v4.5.1" in row
    assert "2026-11-30 02:15 UTC" in row
    assert "8.3 kB" in row
    assert "copied off the host" in row
    assert "did not finish" in page.text  # the partial one
    # A viewer's forged refresh is refused, and starts nothing.
    forged = web.post(
        f"/servers/{server_id}/backups/refresh",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert len(backups_jobs(engine)) == 1  # the one that found the list

    place(engine, server_id)
    web.cookies.clear()
    sign_in(web, world.tokens["admin"])
    page = web.get(f"/servers/{server_id}")
    assert "Refresh backups" in page.text
    # Without the CSRF token: refused.
    assert web.post(f"/servers/{server_id}/backups/refresh").status_code == 403
    assert len(backups_jobs(engine)) == 1
    answer = web.post(
        f"/servers/{server_id}/backups/refresh",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    [job] = [j for j in backups_jobs(engine) if j.finished_at is None]
    page = web.get(f"/servers/{server_id}")
    # The page follows the job live, and offers no second refresh meanwhile.
    assert f'data-live-job="/jobs/{job.id}/live"' in page.text
    assert "Refresh backups" not in page.text
