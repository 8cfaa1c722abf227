"""The stand-in inside a running test host: the fake systemctl and the web process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .fixtures import StartFleet
from .harness import TestHost
from .mastodon_repo import MastodonRepo
from .playbook import run_playbook
from .test_harness import ENCRYPTION_ENV
from .webcheck import answers_ok, get, healthy, instance, wait_for

pytestmark = pytest.mark.hosts

LIVE = "/home/mastodon/live"
UNITS = (
    "mastodon-web.service",
    "mastodon-sidekiq.service",
    "mastodon-streaming.service",
    "mastodon-streaming@.service",
)


@pytest.fixture
def host(start_fleet: StartFleet, mastodon_repo: MastodonRepo) -> TestHost:
    """One host with Mastodon v4.5.1 checked out and its dist units installed."""
    host = start_fleet(["h1"])["h1"]
    host.exec(["useradd", "--create-home", "mastodon"])
    host.exec(
        ["git", "clone", "-q", "--branch", "v4.5.1", mastodon_repo.url, LIVE], user="mastodon"
    )
    env = f"LOCAL_DOMAIN=social.example\nSECRET_KEY_BASE=s\n{ENCRYPTION_ENV}\n"
    host.path(f"{LIVE}/.env.production").write_text(env)
    folder = host.path("/etc/systemd/system")
    folder.mkdir(parents=True, exist_ok=True)
    for unit in UNITS:
        text = host.path(f"{LIVE}/dist/{unit}").read_text()
        text = text.replace("PORT=3000", f"PORT={host.web_port}")
        (folder / unit).write_text(text.replace("@4000", f"@{host.streaming_port}"))
    return host


def systemctl(
    host: TestHost, *args: str, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    return host.exec(["systemctl", *args], check=False, user=user)


def main_pid(host: TestHost, unit: str) -> int:
    return int(systemctl(host, "show", unit, "-p", "MainPID", "--value").stdout)


def test_mastodon_units_start_together_and_answer(host: TestHost) -> None:
    for unit in ("mastodon-web", "mastodon-sidekiq", "mastodon-streaming"):
        assert systemctl(host, "enable", "--now", unit).returncode == 0
    instance_unit = f"mastodon-streaming@{host.streaming_port}"
    assert systemctl(host, "is-active", instance_unit).stdout.strip() == "active"
    assert wait_for(lambda: healthy(host)), host.standin.unit_log("mastodon-web")
    streaming = f"http://127.0.0.1:{host.streaming_port}/api/v1/streaming/health"
    assert wait_for(lambda: answers_ok(streaming))
    assert host.path(
        "/etc/systemd/system/multi-user.target.wants/mastodon-web.service"
    ).is_symlink()
    assert systemctl(host, "is-enabled", "mastodon-web").stdout.strip() == "enabled"
    assert host.standin.unit("mastodon-web")["active"] == "active"  # read through /proc

    # PartOf=: restarting the oneshot restarts its instances; stopping stops them.
    before = main_pid(host, instance_unit)
    assert systemctl(host, "restart", "mastodon-streaming").returncode == 0
    assert main_pid(host, instance_unit) not in (0, before)
    assert systemctl(host, "stop", "mastodon-streaming").returncode == 0
    assert systemctl(host, "is-active", instance_unit).stdout.strip() == "inactive"

    web = host.standin.calls("mastodon-standin-web")[0]
    assert web["user"] == "mastodon"
    assert web["cwd"] == LIVE
    assert web["env"]["RAILS_ENV"] == "production"


UNITS_PLAYBOOK = """\
- name: Ansible's service modules against the fake systemctl
  hosts: all
  gather_facts: false
  tasks:
    - name: Units start and are enabled
      ansible.builtin.systemd_service:
        name: "{{ item }}"
        state: started
        enabled: true
        daemon_reload: true
      loop: [mastodon-web, mastodon-sidekiq, mastodon-streaming]

    - name: The templated streaming instance is known
      ansible.builtin.systemd_service:
        name: "mastodon-streaming@{{ mastodon_streaming_port }}"
        state: started

    - name: Reload and restart as the upgrade does
      ansible.builtin.systemd_service:
        name: "{{ item.name }}"
        state: "{{ item.state }}"
      loop:
        - {name: mastodon-sidekiq, state: restarted}
        - {name: mastodon-web, state: reloaded}
        - {name: mastodon-streaming, state: restarted}
      changed_when: false

    - name: service_facts sees them
      ansible.builtin.service_facts:

    - name: Running, as systemd would say
      ansible.builtin.assert:
        that:
          - ansible_facts.services['mastodon-web.service'].state == 'running'
          - ansible_facts.services['mastodon-sidekiq.service'].status == 'enabled'
"""


@pytest.mark.slow
def test_ansible_service_modules(host: TestHost, tmp_path: Path) -> None:
    fleet_inventory = {"all": {"hosts": {host.name: host.inventory_vars()}}}
    first = run_playbook(tmp_path / "run1", UNITS_PLAYBOOK, fleet_inventory)
    assert first.rc == 0, first.stdout
    assert wait_for(lambda: healthy(host))
    second = run_playbook(tmp_path / "run2", UNITS_PLAYBOOK, fleet_inventory)
    assert second.rc == 0, second.stdout
    assert second.changed() == {host.name: 0}
    restarts = host.standin.commands("systemctl")
    assert "systemctl reload mastodon-web" in " | ".join(restarts)


def test_changed_unit_needs_daemon_reload(host: TestHost) -> None:
    assert systemctl(host, "start", "mastodon-web").returncode == 0
    unit = host.path("/etc/systemd/system/mastodon-web.service")
    changed = 'Environment="LOCAL_DOMAIN=changed.example"\nExecReload'
    unit.write_text(unit.read_text().replace("ExecReload", changed))
    restarted = systemctl(host, "restart", "mastodon-web")
    assert "Run 'systemctl daemon-reload'" in restarted.stderr
    assert systemctl(host, "show", "mastodon-web", "-p", "NeedDaemonReload").stdout == (
        "NeedDaemonReload=yes\n"
    )
    assert wait_for(lambda: healthy(host))
    assert instance(host)["domain"] == "social.example"  # still the old definition

    assert systemctl(host, "daemon-reload").returncode == 0
    assert systemctl(host, "restart", "mastodon-web").stderr == ""
    assert wait_for(lambda: healthy(host) and instance(host)["domain"] == "changed.example")


def test_failures_can_be_injected(host: TestHost) -> None:
    assert systemctl(host, "start", "mastodon-web").returncode == 0
    assert wait_for(lambda: healthy(host))
    host.standin.fail("systemctl reload mastodon-web")
    assert host.ssh("systemctl reload mastodon-web", check=False).returncode == 1
    host.standin.clear_failures()
    assert host.ssh("systemctl reload mastodon-web", check=False).returncode == 0

    host.standin.set_unhealthy()
    assert get(host.web_url + "/health") == (503, b"Service Unavailable")
    host.standin.set_unhealthy(False)
    assert healthy(host)


def test_web_refuses_to_boot_without_its_keys(host: TestHost) -> None:
    host.path(f"{LIVE}/.env.production").write_text("LOCAL_DOMAIN=social.example\n")
    assert systemctl(host, "start", "mastodon-web").returncode == 0  # Type=simple
    assert wait_for(lambda: systemctl(host, "is-active", "mastodon-web").stdout.strip() == "failed")
    assert "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY" in host.standin.unit_log("mastodon-web")


def test_unprivileged_systemctl_is_refused(host: TestHost) -> None:
    refused = systemctl(host, "restart", "mastodon-web", user="mastodon")
    assert refused.returncode == 1
    assert "Interactive authentication required" in refused.stderr


def test_site_settings_from_rails_runner_show_in_the_instance(host: TestHost) -> None:
    ruby = host.exec(["rbenv", "install"], user="mastodon", cwd=LIVE)
    assert ruby.returncode == 0
    host.exec(["bundle", "install"], user="mastodon", cwd=LIVE)
    prefix = ["env", "RAILS_ENV=production", "SAFETY_ASSURED=1"]
    host.exec([*prefix, "bundle", "exec", "rails", "db:setup"], user="mastodon", cwd=LIVE)
    script = (
        'Form::AdminSettings.new(site_title: "Acme Social", registrations_mode: "approved").save'
    )
    host.exec([*prefix, "bin/rails", "runner", script], user="mastodon", cwd=LIVE)
    systemctl(host, "start", "mastodon-web")
    assert wait_for(lambda: healthy(host))
    info = instance(host)
    assert info["title"] == "Acme Social"
    assert info["registrations"] == {
        "enabled": True,
        "approval_required": True,
        "message": None,
        "url": None,
    }
