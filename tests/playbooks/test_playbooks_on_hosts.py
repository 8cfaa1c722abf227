"""The playbooks on test hosts (tests/hosts): each journey, and a second run of
every playbook that changes nothing.

Slow (about 30 s a provision): `python -m pytest tests/playbooks -m hosts`.
Needs root, the test-host requirements (tests/hosts/README.md), ansible-runner
and the PostgreSQL server on 127.0.0.1:5432 (roles and databases named
herd_pbtest_* are created there and dropped again by deprovision.yml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hosts import webcheck
from tests.hosts.harness import TestFleet
from tests.hosts.mastodon_repo import MastodonRepo
from tests.hosts.playbook import PlaybookRun, run_playbook

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
SKIP = "--skip-tags packages,certbot,redis"

pytestmark = [pytest.mark.hosts, pytest.mark.slow, pytest.mark.postgres]


class Runner:
    def __init__(self, tmp_path: Path, fleet: TestFleet, repo: MastodonRepo) -> None:
        self.tmp_path, self.fleet, self.repo, self.count = tmp_path, fleet, repo, 0

    def variables(self, **extra: Any) -> dict[str, Any]:
        return {
            "mastodon_repo_url": self.repo.url,
            "mastodon_local_domain": "social.example.test",
            "mastodon_version": "v4.5.1",
            "mastodon_nginx_tls_mode": "self_signed",
            "mastodon_db_host": "127.0.0.1",
            "mastodon_database_admin_host": "127.0.0.1",
            "mastodon_db_name": "herd_pbtest_h1",
            "mastodon_db_user": "herd_pbtest_h1",
            "mastodon_db_password": "pbtest-password",
            "mastodon_deprovision_confirm": "social.example.test",
            **extra,
        }

    def run(self, playbook: str, **extra: Any) -> PlaybookRun:
        self.count += 1
        return run_playbook(
            self.tmp_path / f"run{self.count}",
            str(PLAYBOOKS / playbook),
            self.fleet.inventory(),
            self.variables(**extra),
            cmdline=SKIP,
        )

    def twice(self, playbook: str, **extra: Any) -> PlaybookRun:
        first = self.run(playbook, **extra)
        assert first.rc == 0, first.stdout[-3000:]
        second = self.run(playbook, **extra)
        assert second.rc == 0, second.stdout[-3000:]
        assert second.changed() == {"h1": 0}, f"{playbook} changed things on its second run"
        return first


@pytest.fixture
def runner(tmp_path: Path, start_fleet, mastodon_repo: MastodonRepo) -> Runner:
    fleet = start_fleet(["h1"])
    runner = Runner(tmp_path, fleet, mastodon_repo)
    yield runner
    runner.run("deprovision.yml")


def commands(fleet: TestFleet) -> list[str]:
    return [
        call["command"]
        for call in fleet["h1"].standin.calls()
        if call["tool"] != "systemctl"
        or not call["command"].startswith(("systemctl show", "systemctl is-"))
    ]


def test_provision_upgrade_rollback(runner: Runner) -> None:
    host = runner.fleet["h1"]
    runner.twice(
        "provision.yml", mastodon_owner_username="admin", mastodon_owner_email="it@example.test"
    )
    assert webcheck.instance(host)["version"] == "4.5.1"
    assert "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY=" in host.read_text(
        "/home/mastodon/live/.env.production"
    )

    host.standin.clear_calls()
    runner.twice("upgrade.yml", mastodon_version="v4.6.0")
    steps = [
        c for c in commands(runner.fleet) if not c.startswith(("bundle check", "systemctl daemon"))
    ]
    assert steps[:7] == [
        "rbenv install 4.0.1",
        "bundle install --jobs 4",
        "yarn install --immutable",
        "bundle exec rails db:migrate",
        "bundle exec rails assets:precompile",
        "systemctl restart mastodon-sidekiq.service",
        "mastodon-standin-worker",
    ]
    assert (
        steps.index("systemctl reload mastodon-web.service")
        < steps.index("systemctl restart mastodon-streaming.service")
        < len(steps) - 1
    )
    assert steps[-1] == "bundle exec rails db:migrate"
    pre = [c for c in host.standin.calls() if c["command"] == "bundle exec rails db:migrate"]
    assert [c["env"].get("SKIP_POST_DEPLOYMENT_MIGRATIONS") for c in pre] == ["true", None]
    assert webcheck.instance(host)["version"] == "4.6.0"

    runner.twice("rollback.yml", mastodon_version="v4.6.0")
    assert webcheck.instance(host)["version"] == "4.5.1"
    assert '"rolled_back_from": "v4.6.0"' in host.read_text("/home/mastodon/herd/state.json")


def test_operations_change_nothing_the_second_time(runner: Runner) -> None:
    host = runner.fleet["h1"]
    # provision.yml's own second run is test_provision_upgrade_rollback's.
    first = runner.run("provision.yml")
    assert first.rc == 0, first.stdout[-3000:]
    runner.twice(
        "brand.yml",
        mastodon_site_title="City of Example",
        mastodon_branding_primary_color="#0b5fff",
    )
    assert webcheck.instance(host)["title"] == "City of Example"
    runner.twice("suspend.yml")
    assert host.path("/var/www/herd/mastodon/maintenance.on").exists()
    runner.twice("resume.yml")
    assert webcheck.healthy(host)
    runner.twice(
        "sso.yml",
        mastodon_oidc_enabled=True,
        mastodon_oidc_issuer="https://sso.example.test/realms/city",
        mastodon_oidc_client_id="mastodon",
        mastodon_oidc_client_secret="client-secret",
    )
    assert "OIDC_SCOPE=openid,profile,email" in host.read_text(
        "/home/mastodon/live/.env.production"
    )
    runner.twice("restart.yml")
    runner.twice("backup.yml", mastodon_backup_label="manual")
    runner.twice("restore.yml", mastodon_backup_label="manual")
    assert webcheck.healthy(host)
