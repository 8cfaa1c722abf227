"""The stand-in's emulation of herd-moderators.rb, in this process: tokens
it installs work against the stand-in's admin API with exactly the
moderation scopes, and revoked ones stop working (no test host needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.moderation.sync import SCOPES
from tests.hosts.standin import admin_api, common, moderators
from tests.hosts.standin.database import databases, new_database

ENV = {"RAILS_ENV": "production", "DB_NAME": "mastodon_test"}
APP = "Herd moderation"
ALICE, BOB = "a" * 43, "b" * 43


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "STATE_DIR", tmp_path)
    with databases() as dbs:
        db = dbs.setdefault("mastodon_test", new_database(ENV))
        for name in ("alice", "bob"):
            db["accounts"][name] = {"email": f"{name}@provider.test", "role": "Moderator"}
    return tmp_path


def _run(monkeypatch: pytest.MonkeyPatch, grant: list[dict[str, str]], revoke: list[str]) -> None:
    request = {"application": APP, "scopes": " ".join(SCOPES), "grant": grant, "revoke": revoke}
    monkeypatch.setenv("HERD_MODERATOR_ACCESS", json.dumps(request))
    moderators.run(ENV)


def _status(token: str, path: str = "/api/v1/admin/reports", method: str = "GET") -> int:
    answer = admin_api.handle(method, path, {}, {"Authorization": f"Bearer {token}"}, {}, "x.test")
    assert answer is not None
    return answer.status


def test_tokens_work_with_moderation_scopes_only_until_revoked(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(
        monkeypatch, [{"username": "alice", "token": ALICE}, {"username": "bob", "token": BOB}], []
    )
    report = json.loads(capsys.readouterr().out)["herd_moderators"]
    assert sorted(g["username"] for g in report["granted"]) == ["alice", "bob"]
    assert ALICE not in json.dumps(report)
    assert _status(ALICE) == 200
    assert _status(BOB) == 200
    tokens = json.loads((state / common.TOKENS).read_text())
    assert tokens[ALICE]["scopes"] == list(SCOPES)

    # A token of the same account without the reports scope is refused.
    account_id = tokens[ALICE]["account_id"]
    tokens["c" * 43] = {"account_id": account_id, "scopes": ["admin:read:accounts"]}
    (state / common.TOKENS).write_text(json.dumps(tokens))
    assert _status("c" * 43) == 403

    # Running again changes nothing; a new value replaces the old one.
    _run(monkeypatch, [{"username": "alice", "token": "d" * 43}], ["bob"])
    assert _status(ALICE) == 401
    assert _status("d" * 43) == 200
    assert _status(BOB) == 401
    # Tokens of other applications are not the script's to touch.
    assert _status("c" * 43) == 403
