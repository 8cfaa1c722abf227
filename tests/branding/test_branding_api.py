"""Branding through the API: what is accepted, what is refused (with
nothing stored), and the brand job a change starts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.branding.models import ServerBranding
from controlplane.branding.service import branding_variables
from controlplane.jobs.models import Job, JobState
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from tests.factories import World, build_world

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


def _brand_jobs(engine: Engine) -> list[Job]:
    with Session(engine) as session:
        return list(session.exec(select(Job).where(Job.kind == "brand")).all())


def _stored(herd_env: Path) -> list[str]:
    folder = herd_env / "branding"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _row(engine: Engine, world: World) -> ServerBranding | None:
    with Session(engine) as session:
        return session.get(ServerBranding, world.ids["server"])


def test_colours_and_css_are_saved_and_a_brand_job_starts(
    client: TestClient, world: World, engine: Engine
) -> None:
    url = f"/api/v1/servers/{world.ids['server']}/branding"
    answer = client.put(
        url,
        headers=world.headers("admin"),
        json={
            "primary_color": "#1F4FBF",
            "text_color": "#101010",
            "custom_css": ".column { border-radius: 0 }",
            "title": "Campus social",
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["primary_color"] == "#1f4fbf"
    assert body["title"] == "Campus social"
    jobs = _brand_jobs(engine)
    assert [str(j.id) for j in jobs] == [body["job_id"]]
    assert jobs[0].server_id == world.ids["server"]

    shown = client.get(url, headers=world.headers("viewer")).json()
    assert shown["custom_css"] == ".column { border-radius: 0 }"
    assert shown["accent_color"] == ""

    # The same branding again changes nothing and starts nothing more.
    again = client.put(
        url,
        headers=world.headers("admin"),
        json={
            "primary_color": "#1f4fbf",
            "text_color": "#101010",
            "custom_css": ".column { border-radius: 0 }",
        },
    )
    assert again.status_code == 200
    assert len(_brand_jobs(engine)) == 1

    with Session(engine) as session:
        server = session.get(Server, world.ids["server"])
        assert server is not None
        assert server.title == "Campus social"
        variables = branding_variables(session, server)
    assert variables["mastodon_branding_primary_color"] == "#1f4fbf"
    assert variables["mastodon_branding_custom_css"] == ".column { border-radius: 0 }"
    assert variables["mastodon_branding_image_files"] == {}


def test_a_server_not_running_yet_gets_no_brand_job(
    client: TestClient, world: World, engine: Engine
) -> None:
    answer = client.put(
        f"/api/v1/servers/{world.ids['requested_server']}/branding",
        headers=world.headers("owner"),
        json={"accent_color": "#aa0000"},
    )
    assert answer.status_code == 200
    assert answer.json()["job_id"] is None
    assert _brand_jobs(engine) == []


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("primary_color", "red", "primary_color"),
        ("primary_color", "#12345", "primary_color"),
        ("custom_css", "a{}</style><script>alert(1)</script>", "</style"),
        ("custom_css", "@import url(https://evil.example-herd.org/x.css);", "@import"),
        ("custom_css", "@import '//evil.example-herd.org/x.css';", "@import"),
        ("custom_css", "@\\69mport/**/url(http://evil.example-herd.org/x.css);", "@import"),
        ("custom_css", "a { color: red }" * 2000, "20000 bytes"),
    ],
)
def test_bad_branding_is_refused_and_nothing_changes(
    client: TestClient, world: World, engine: Engine, field: str, value: str, says: str
) -> None:
    answer = client.put(
        f"/api/v1/servers/{world.ids['server']}/branding",
        headers=world.headers("owner"),
        json={field: value},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.text
    assert _row(engine, world) is None
    assert _brand_jobs(engine) == []


def test_a_local_import_is_allowed(client: TestClient, world: World) -> None:
    answer = client.put(
        f"/api/v1/servers/{world.ids['server']}/branding",
        headers=world.headers("owner"),
        json={"custom_css": "@import '/packs/extra.css';"},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("kind", "content_type", "data"),
    [("logo", "image/png", PNG), ("background", "image/jpeg", JPEG), ("logo", "image/webp", WEBP)],
)
def test_images_are_stored_by_their_digest(
    client: TestClient,
    world: World,
    engine: Engine,
    herd_env: Path,
    kind: str,
    content_type: str,
    data: bytes,
) -> None:
    url = f"/api/v1/servers/{world.ids['server']}/branding/{kind}"
    answer = client.put(
        url, headers={**world.headers("admin"), "Content-Type": content_type}, content=data
    )
    assert answer.status_code == 200, answer.text
    sha = hashlib.sha256(data).hexdigest()
    assert answer.json()[kind] == {"sha256": sha, "content_type": content_type}
    [name] = _stored(herd_env)
    assert name.startswith(sha)
    assert (herd_env / "branding" / name).read_bytes() == data
    assert len(_brand_jobs(engine)) == 1
    with Session(engine) as session:
        server = session.get(Server, world.ids["server"])
        assert server is not None
        files = branding_variables(session, server)["mastodon_branding_image_files"]
    setting = {"logo": "mascot", "background": "thumbnail"}[kind]
    assert files == {setting: str(herd_env / "branding" / name)}
    # The same bytes again: nothing new stored, no second job.
    client.put(url, headers={**world.headers("admin"), "Content-Type": content_type}, content=data)
    assert len(_stored(herd_env)) == 1
    assert len(_brand_jobs(engine)) == 1


@pytest.mark.parametrize(
    ("content_type", "data", "status"),
    [
        ("image/svg+xml", SVG, 415),
        ("text/html", b"<html></html>", 415),
        (None, PNG, 415),
        ("image/png", SVG, 422),  # an SVG that calls itself PNG
        ("image/png", JPEG, 422),
        ("image/jpeg", b"", 422),
        ("image/gif", b"GIF89a" + b"\x00" * 20, 415),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    client: TestClient,
    world: World,
    engine: Engine,
    herd_env: Path,
    content_type: str | None,
    data: bytes,
    status: int,
) -> None:
    headers = world.headers("owner")
    if content_type:
        headers["Content-Type"] = content_type
    answer = client.put(
        f"/api/v1/servers/{world.ids['server']}/branding/logo", headers=headers, content=data
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert _stored(herd_env) == []
    assert _row(engine, world) is None
    assert _brand_jobs(engine) == []


def test_an_image_over_the_limit_is_refused(
    client: TestClient,
    world: World,
    engine: Engine,
    herd_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERD_BRANDING_IMAGE_MAX_BYTES", "1000")
    get_settings.cache_clear()
    answer = client.put(
        f"/api/v1/servers/{world.ids['server']}/branding/logo",
        headers={**world.headers("owner"), "Content-Type": "image/png"},
        content=PNG + b"\x00" * 1000,
    )
    assert answer.status_code == 413
    assert "1000 bytes" in answer.json()["detail"]
    assert _stored(herd_env) == []
    assert _row(engine, world) is None


def test_a_viewer_cannot_upload(
    client: TestClient, world: World, engine: Engine, herd_env: Path
) -> None:
    answer = client.put(
        f"/api/v1/servers/{world.ids['server']}/branding/logo",
        headers={**world.headers("viewer"), "Content-Type": "image/png"},
        content=PNG,
    )
    assert answer.status_code == 403
    assert _stored(herd_env) == []


def test_a_removed_image_is_no_longer_deployed(
    client: TestClient, world: World, engine: Engine, herd_env: Path
) -> None:
    base = f"/api/v1/servers/{world.ids['server']}/branding"
    for kind, data in (("logo", PNG), ("background", JPEG)):
        content_type = "image/png" if kind == "logo" else "image/jpeg"
        answer = client.put(
            f"{base}/{kind}",
            headers={**world.headers("owner"), "Content-Type": content_type},
            content=data,
        )
        assert answer.status_code == 200, answer.text
    [first_job] = _brand_jobs(engine)
    with Session(engine) as session:
        # The brand job ran: a removal needs a new one.
        first_job.state = JobState.succeeded
        session.add(first_job)
        session.commit()

    # Neither a viewer nor another organisation may remove it.
    assert client.delete(f"{base}/logo", headers=world.headers("viewer")).status_code == 403
    assert client.delete(f"{base}/logo", headers=world.headers("outsider")).status_code == 404
    assert client.delete(f"{base}/logo", headers=world.headers("readonly")).status_code == 403
    assert client.delete(f"{base}/banner", headers=world.headers("owner")).status_code == 404

    removed = client.delete(f"{base}/logo", headers=world.headers("admin"))
    assert removed.status_code == 200, removed.text
    body = removed.json()
    assert body["logo"] is None
    assert body["background"] is not None
    jobs = _brand_jobs(engine)
    assert len(jobs) == 2
    assert body["job_id"] == str(jobs[-1].id)
    with Session(engine) as session:
        server = session.get(Server, world.ids["server"])
        assert server is not None
        files = branding_variables(session, server)["mastodon_branding_image_files"]
        entry = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "server.branding_update")
            .order_by(col(AuditEntry.id).desc())
        ).first()
    # The brand run is given the background only, so it takes the logo off.
    assert list(files) == ["thumbnail"]
    assert entry is not None
    assert entry.details["removed"] == ["logo"]
    # The bytes stay in Herd's store: another server may use them.
    assert len(_stored(herd_env)) == 2

    # Removing it again changes nothing and starts nothing.
    again = client.delete(f"{base}/logo", headers=world.headers("admin"))
    assert again.status_code == 200
    assert len(_brand_jobs(engine)) == 2
