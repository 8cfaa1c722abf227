"""What schemathesis found, pinned down so it stays fixed whatever examples
a later run happens to draw."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.factories import build_world


def test_null_for_a_required_organisation_field_is_refused(
    client: TestClient, engine: Engine
) -> None:
    world = build_world(engine)
    for body in ({"name": None}, {"timezone": None}):
        answer = client.patch(
            f"/api/v1/organisations/{world.ids['org']}", json=body, headers=world.headers("owner")
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    # Clearing the optional billing address is still allowed.
    cleared = client.patch(
        f"/api/v1/organisations/{world.ids['org']}",
        json={"billing_email": None},
        headers=world.headers("owner"),
    )
    assert cleared.status_code == 200, cleared.text


def test_staff_acting_on_an_organisation_that_does_not_exist_get_404(
    client: TestClient, engine: Engine
) -> None:
    staff = build_world(engine).headers("staff_admin")
    missing = uuid.uuid4()
    answers = [
        client.post(
            f"/api/v1/organisations/{missing}/invitations",
            json={"email": "someone@example-herd.org"},
            headers=staff,
        ),
        client.get(f"/api/v1/organisations/{missing}/billing", headers=staff),
        client.patch(f"/api/v1/organisations/{missing}/billing", json={}, headers=staff),
    ]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json()["type"] == "urn:herd:problem:not-found"
