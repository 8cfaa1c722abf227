"""The Mastodon stand-in on its own, run in this process (no test host needed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .mastodon_repo import MastodonRepo
from .standin import admin_api, checkout, cli, common, rails, tootctl, units

ENCRYPTION = {key: f"value-{n}" for n, key in enumerate(checkout.ENCRYPTION_KEYS)}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "standin"
    folder.mkdir()
    monkeypatch.setattr(common, "STATE_DIR", folder)
    return folder


@pytest.fixture
def live(
    tmp_path: Path, mastodon_repo: MastodonRepo, state: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A checkout of v4.5.1 as the current directory, HOME next to it."""
    home = tmp_path / "home"
    checkout_dir = home / "live"
    subprocess.run(
        ["git", "clone", "-q", "--branch", "v4.5.1", mastodon_repo.url, str(checkout_dir)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("HOME", str(home))
    for name in ("RAILS_ENV", "RBENV_VERSION", "BUNDLE_GEMFILE", "SKIP_POST_DEPLOYMENT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(checkout_dir)
    return checkout_dir


def run(tool: str, *args: str) -> int:
    return cli.main(tool, [tool, *args])


def calls(state: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (state / common.CALLS).read_text().splitlines()]


# -- recording and failure injection ---------------------------------------------


def test_each_call_is_one_json_line_with_the_environment_that_matters(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAILS_ENV", "production")
    monkeypatch.setenv("OIDC_CLIENT_ID", "herd")
    monkeypatch.setenv("UNRELATED", "x")
    assert run("node", "--version") == 0
    (call,) = calls(state)
    assert call["tool"] == "node"
    assert call["argv"] == ["node", "--version"]
    assert call["command"] == "node --version"
    env = call["env"]
    assert isinstance(env, dict)
    assert env["RAILS_ENV"] == "production"
    assert env["OIDC_CLIENT_ID"] == "herd"
    assert "UNRELATED" not in env


@pytest.mark.parametrize(
    ("line", "command", "env", "fails"),
    [
        ("rails db:migrate", "bundle exec rails db:migrate", {}, True),
        ("rails db:migrate", "bundle exec rails assets:precompile", {}, False),
        (
            "SKIP_POST_DEPLOYMENT_MIGRATIONS=true rails db:migrate",
            "bundle exec rails db:migrate",
            {"SKIP_POST_DEPLOYMENT_MIGRATIONS": "true"},
            True,
        ),
        (
            "SKIP_POST_DEPLOYMENT_MIGRATIONS=true rails db:migrate",
            "bundle exec rails db:migrate",
            {},
            False,
        ),
        ("re:^systemctl (restart|reload) mastodon-web", "systemctl reload mastodon-web", {}, True),
        ("# rails db:migrate", "bundle exec rails db:migrate", {}, False),
    ],
)
def test_failure_patterns(
    state: Path, line: str, command: str, env: dict[str, str], fails: bool
) -> None:
    (state / common.FAIL).write_text(line + "\n")
    assert (common.failure_for(command, env) is not None) is fails


def test_an_injected_failure_exits_1_and_is_recorded(state: Path) -> None:
    (state / common.FAIL).write_text("node --version\n")
    assert run("node", "--version") == 1
    assert calls(state)[0]["injected_failure"] == "node --version"


# -- Ruby tools in a checkout --------------------------------------------------------


def test_ruby_tools_need_the_checkouts_ruby_installed(live: Path) -> None:
    assert run("bundle", "install") == 1  # rbenv: version `3.4.7' is not installed
    assert run("rbenv", "install") == 0
    assert (live.parent / ".rbenv/versions/3.4.7").is_dir()
    assert run("rbenv", "install") == 1  # already exists, no terminal to say yes
    assert run("rbenv", "install", "--skip-existing") == 0
    assert run("bundle", "exec", "rails", "secret") == 7  # gems not installed yet
    assert run("bundle", "config", "deployment", "true") == 0
    assert run("bundle", "install") == 0
    assert (live / "vendor/bundle").is_dir()


def test_rails_refuses_to_boot_like_mastodon(live: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_ruby_and_gems()
    monkeypatch.setenv("RAILS_ENV", "production")
    assert run("bundle", "exec", "rails", "db:setup") == 1  # no encryption keys
    write_env(live, SECRET_KEY_BASE="s", REDIS_NAMESPACE="old")
    assert run("bundle", "exec", "rails", "db:setup") == 1  # REDIS_NAMESPACE is gone in 4.4
    write_env(live, SECRET_KEY_BASE="s")
    assert run("bundle", "exec", "rails", "db:setup") == 0


def test_migrations_are_tracked_per_database(
    live: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_ruby_and_gems()
    write_env(live, SECRET_KEY_BASE="s", DB_NAME="tenant_a")
    monkeypatch.setenv("RAILS_ENV", "production")
    assert run("bundle", "exec", "rails", "db:migrate") == 1  # no database yet
    assert run("bundle", "exec", "rails", "db:setup") == 0
    assert run("bundle", "exec", "rails", "db:setup") == 1  # protected environment
    subprocess.run(["git", "checkout", "-q", "v4.5.2"], check=True)
    install_ruby_and_gems()
    monkeypatch.setenv("SKIP_POST_DEPLOYMENT_MIGRATIONS", "true")
    assert run("bundle", "exec", "rails", "db:migrate") == 0
    db = json.loads((state / common.DATABASES).read_text())["tenant_a"]
    assert (db["schema_version"], db["post_deployment_version"]) == ("4.5.2", "4.5.1")
    monkeypatch.delenv("SKIP_POST_DEPLOYMENT_MIGRATIONS")
    assert run("bundle", "exec", "rails", "db:migrate") == 0
    db = json.loads((state / common.DATABASES).read_text())["tenant_a"]
    assert db["post_deployment_version"] == "4.5.2"


def test_generators_print_what_mastodon_prints(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install_ruby_and_gems()
    capsys.readouterr()
    assert run("bundle", "exec", "rails", "secret") == 0
    assert len(capsys.readouterr().out.strip()) == 128
    assert run("bundle", "exec", "rails", "mastodon:webpush:generate_vapid_key") == 0
    vapid = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert vapid.keys() == {"VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY"}
    assert run("rails", "db:encryption:init") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "=" in line]
    assert [line.split("=")[0] for line in lines] == list(checkout.ENCRYPTION_KEYS)
    assert all(len(line.split("=")[1]) == 32 for line in lines)


def test_tootctl_creates_the_owner_once(
    live: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_ruby_and_gems()
    write_env(live, SECRET_KEY_BASE="s")
    monkeypatch.setenv("RAILS_ENV", "production")
    assert run("bundle", "exec", "rails", "db:setup") == 0
    capsys.readouterr()
    create = (
        "accounts",
        "create",
        "owner",
        "--email",
        "o@example.com",
        "--confirmed",
        "--role",
        "Owner",
    )
    assert run("tootctl", *create) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK\nNew password: ")
    assert len(out.split(": ")[1].strip()) == 32
    assert run("tootctl", *create) == 1
    assert "has already been taken" in capsys.readouterr().err


def test_settings_from_a_runner_script() -> None:
    code = (
        'Form::AdminSettings.new(site_title: "Acme \\"Social\\"", '
        "registrations_mode: 'none').save"
    )
    assert rails.settings_in(code, {}) == {
        "site_title": 'Acme "Social"',
        "registrations_mode": "none",
    }
    code = 'Form::AdminSettings.new(JSON.parse(ENV["BRAND"])).save'
    assert rails.settings_in(code, {"BRAND": '{"site_title": "T"}'}) == {"site_title": "T"}


# -- pieces ------------------------------------------------------------------------


def test_dotenv_and_version(live: Path) -> None:
    assert checkout.parse_dotenv(
        "# c\nexport A=1\nB='two words'\nC=\"x=y\"\nD=plain # comment\nbad line\n"
    ) == {"A": "1", "B": "two words", "C": "x=y", "D": "plain"}
    version = checkout.read_version(live, {"MASTODON_VERSION_METADATA": "glitch"})
    assert str(version) == "4.5.1+glitch"
    assert version.api_version == 7


def test_unit_files_parse_like_systemd() -> None:
    sections: units.Sections = {}
    text = (
        '[Service]\nEnvironment="NODE_ENV=production" "PORT=%i"\nEnvironment=A=1\n'
        "ExecStart=/usr/bin/node \\\n  ./streaming\n"
        "[Unit]\nWants=a.service\nWants=\nWants=b.service\n"
    )
    units.parse(text, "mastodon-streaming@4001.service", sections)
    unit = units.Unit("mastodon-streaming@4001.service", "/x", sections=sections)
    assert unit.environment() == {"NODE_ENV": "production", "PORT": "4001", "A": "1"}
    assert unit.get("Service", "ExecStart") == "/usr/bin/node    ./streaming"
    assert unit.words("Unit", "Wants") == ["b.service"]
    assert units.split_instance("mastodon-streaming@4001.service") == (
        "mastodon-streaming@.service",
        "4001",
    )
    assert units.normalize("nginx") == "nginx.service"


def test_tootctl_options() -> None:
    assert tootctl.parse_options(
        ["create", "bob", "--email=b@x", "--confirmed", "--role", "Owner"]
    ) == (
        ["create", "bob"],
        {"email": "b@x", "confirmed": True, "role": "Owner"},
    )


# -- admin API ----------------------------------------------------------------------


@pytest.fixture
def admin(state: Path) -> Path:
    data = {
        "accounts": [
            admin_api.account_record("1", "mod", role="Moderator"),
            admin_api.account_record("2", "reporter"),
            admin_api.account_record("3", "spammer"),
        ],
        "reports": [
            admin_api.report_record("10", "2", "3", category="spam"),
            admin_api.report_record("11", "2", "3", category="other"),
            admin_api.report_record("12", "2", "1", action_taken=True),
        ],
    }
    (state / common.ADMIN).write_text(json.dumps(data))
    tokens = {
        "mod-token": {"account_id": "1", "scopes": ["admin:read", "admin:write"]},
        "read-only": {"account_id": "1", "scopes": ["admin:read:reports"]},
        "user-token": {"account_id": "2", "scopes": ["admin:read", "admin:write"]},
    }
    (state / common.TOKENS).write_text(json.dumps(tokens))
    return state


def call(
    method: str, path: str, token: str | None = "mod-token", **form: object
) -> admin_api.Answer:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query = {k: str(v) for k, v in form.items()} if method == "GET" else {}
    answer = admin_api.handle(method, path, query, headers, form, "social.example")
    assert answer is not None
    return answer


def test_admin_api_authorisation(admin: Path) -> None:
    assert call("GET", "/api/v1/admin/reports", token=None).body == {
        "error": "The access token is invalid"
    }
    assert call("GET", "/api/v1/admin/reports", token=None).status == 401
    assert call("GET", "/api/v1/admin/reports", token="read-only").status == 200
    denied = call("POST", "/api/v1/admin/reports/10/resolve", token="read-only")
    assert (denied.status, denied.body) == (
        403,
        {"error": "This action is outside the authorized scopes"},
    )
    no_role = call("GET", "/api/v1/admin/reports", token="user-token")
    assert (no_role.status, no_role.body) == (403, {"error": "This action is not allowed"})
    assert call("GET", "/api/v1/admin/reports/99").status == 404


def test_admin_reports_flow(admin: Path) -> None:
    listed = call("GET", "/api/v1/admin/reports")
    assert [r["id"] for r in listed.body] == ["11", "10"]  # unresolved, newest first
    assert 'rel="next"' in listed.headers["Link"]
    report = listed.body[1]
    assert report["target_account"]["account"]["acct"] == "spammer"
    assert report["assigned_account"] is None
    assert report["action_taken"] is False

    assigned = call("POST", "/api/v1/admin/reports/10/assign_to_self").body
    assert assigned["assigned_account"]["username"] == "mod"
    resolved = call("POST", "/api/v1/admin/reports/10/resolve").body
    assert resolved["action_taken"] is True
    assert resolved["action_taken_by_account"]["id"] == "1"
    assert call("POST", "/api/v1/admin/reports/10/reopen").body["action_taken"] is False
    assert call("POST", "/api/v1/admin/reports/10/unassign").body["assigned_account"] is None
    assert call("GET", "/api/v1/admin/reports", resolved="true").body[0]["id"] == "12"


def test_account_action_resolves_reports_like_mastodon(admin: Path) -> None:
    warned = call("POST", "/api/v1/admin/accounts/3/action", type="none", report_id="10")
    assert (warned.status, warned.body) == (200, {})
    assert [r["id"] for r in call("GET", "/api/v1/admin/reports").body] == ["11"]
    assert call("POST", "/api/v1/admin/accounts/3/action", type="suspend").status == 200
    assert call("GET", "/api/v1/admin/reports").body == []
    assert call("GET", "/api/v1/admin/accounts/3").body["suspended"] is True
    assert call("POST", "/api/v1/admin/accounts/3/action", type="explode").status == 422


# -- helpers ------------------------------------------------------------------------


def install_ruby_and_gems() -> None:
    assert run("rbenv", "install", "--skip-existing") == 0
    assert run("bundle", "install") == 0


def write_env(live: Path, **values: str) -> None:
    lines = {**ENCRYPTION, **values}
    (live / ".env.production").write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
