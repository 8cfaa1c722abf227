"""The test hosts themselves: SSH, Ansible, isolation, clean stop, faults."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from . import ports
from .fixtures import StartFleet
from .harness import HostStartError, TestFleet, TestHost
from .layout import SharedPathError
from .mastodon_repo import MastodonRepo
from .playbook import run_playbook
from .webcheck import get_json, healthy, instance, wait_for

pytestmark = pytest.mark.hosts

ENCRYPTION_ENV = "\n".join(
    f"{key}=test-{key.lower()[-12:]}"
    for key in (
        "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY",
        "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
        "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
    )
)

TINY_PLAYBOOK = """\
- name: Tiny playbook against the test hosts
  hosts: all
  gather_facts: true
  tasks:
    - name: The host looks systemd-managed to Ansible
      ansible.builtin.assert:
        that: ansible_service_mgr == "systemd"

    - name: A file in /home
      ansible.builtin.copy:
        dest: /home/herd-test.txt
        content: "{{ inventory_hostname }}\\n"
        mode: "0644"

    - name: A user to become
      ansible.builtin.user:
        name: mastodon
        shell: /bin/bash

    - name: Becoming it works (sudo) and the stand-in is first on its PATH
      ansible.builtin.command: rbenv --version
      become: true
      become_user: mastodon
      changed_when: false

    - name: A Mastodon checkout for the stand-in web process
      ansible.builtin.git:
        repo: "{{ repo_url }}"
        dest: /srv/mastodon
        version: v4.5.1

    - name: Its configuration
      ansible.builtin.copy:
        dest: /srv/mastodon/.env.production
        content: |
          LOCAL_DOMAIN={{ inventory_hostname }}.example
          SECRET_KEY_BASE=test-secret
          {{ encryption_env }}
        mode: "0600"

    - name: A web unit on the host's own port
      ansible.builtin.copy:
        dest: /etc/systemd/system/herd-web.service
        content: |
          [Unit]
          Description=Herd test web
          [Service]
          Type=simple
          WorkingDirectory=/srv/mastodon
          Environment="RAILS_ENV=production" "PORT={{ mastodon_web_port }}"
          ExecStart=/usr/bin/env puma -C config/puma.rb
          ExecReload=/bin/kill -SIGUSR1 $MAINPID
          [Install]
          WantedBy=multi-user.target
        mode: "0644"

    - name: The web unit runs
      ansible.builtin.systemd_service:
        name: herd-web
        state: started
        enabled: true
        daemon_reload: true

    - name: It answers its health check
      ansible.builtin.uri:
        url: "http://127.0.0.1:{{ mastodon_web_port }}/health"
        return_content: true
      register: health
      retries: 20
      delay: 0.2
      until: health.status == 200
      failed_when: health.content != "OK"
"""


@pytest.mark.slow
def test_playbook_over_ssh_lands_on_each_host_only(
    fleet: TestFleet, mastodon_repo: MastodonRepo, tmp_path: Path
) -> None:
    inventory = fleet.inventory()
    extravars = {"repo_url": mastodon_repo.url, "encryption_env": ENCRYPTION_ENV}

    first = run_playbook(tmp_path / "run1", TINY_PLAYBOOK, inventory, extravars)
    assert first.rc == 0, first.stdout
    assert all(count > 0 for count in first.changed().values())
    assert first.changed().keys() == {"h1", "h2"}

    for host in fleet:
        assert host.path("/home/herd-test.txt").read_text() == f"{host.name}\n"
        assert first.facts(host.name)["ansible_hostname"] == host.name
        assert first.facts(host.name)["ansible_service_mgr"] == "systemd"
        assert healthy(host)
        (rbenv,) = host.standin.calls("rbenv")
        assert (rbenv["user"], rbenv["env"]["HOME"]) == ("mastodon", "/home/mastodon")
    assert not Path("/home/herd-test.txt").exists()
    assert not Path("/srv/mastodon").exists()
    assert not Path("/etc/systemd/system/herd-web.service").exists()

    second = run_playbook(tmp_path / "run2", TINY_PLAYBOOK, inventory, extravars)
    assert second.rc == 0, second.stdout
    assert second.changed() == {"h1": 0, "h2": 0}

    pids = [pid for host in fleet for pid in host.processes()]
    assert len(pids) >= 6  # per host: PID 1, sshd, the web stand-in
    fleet.stop()
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert pgrep(str(fleet.root)) == []
    assert [h.processes() for h in fleet] == [[], []]


def test_fake_repository_reports_checked_out_version(
    start_fleet: StartFleet, mastodon_repo: MastodonRepo, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", mastodon_repo.url, str(clone)], check=True)
    tags = subprocess.run(
        ["git", "-C", str(clone), "tag"], capture_output=True, text=True, check=True
    ).stdout
    assert tags.split() == sorted(mastodon_repo.tags)

    host = start_fleet(["h1"])["h1"]
    host.exec(["useradd", "--create-home", "mastodon"])
    live = "/home/mastodon/live"
    host.exec(["git", "clone", "-q", mastodon_repo.url, live], user="mastodon")
    host.exec(["git", "checkout", "-q", "v4.5.1"], user="mastodon", cwd=live)
    host.path(f"{live}/.env.production").write_text(
        f"LOCAL_DOMAIN=social.example\nSECRET_KEY_BASE=x\n{ENCRYPTION_ENV}\n"
    )
    install_web_unit(host, mastodon_repo)
    host.exec(["systemctl", "start", "mastodon-web"])
    # Type=simple: start returns once the process runs, not once it listens.
    assert wait_for(lambda: healthy(host)), host.standin.unit_log("mastodon-web")

    assert instance(host)["version"] == "4.5.1"
    assert instance(host)["api_versions"] == {"mastodon": 7}
    assert instance(host)["domain"] == "social.example"
    assert get_json(host, "/nodeinfo/2.0")["software"] == {"name": "mastodon", "version": "4.5.1"}

    host.exec(["git", "checkout", "-q", "v4.6.0"], user="mastodon", cwd=live)
    assert instance(host)["version"] == "4.5.1"  # until the phased restart
    host.exec(["systemctl", "reload", "mastodon-web"])
    assert wait_for(lambda: instance(host)["version"] == "4.6.0")


def test_private_and_shared_paths(start_fleet: StartFleet, tmp_path: Path) -> None:
    shared = tmp_path / "fixture.txt"
    shared.write_text("from the harness\n")
    host = start_fleet(["h1"], shared_paths=[shared])["h1"]
    assert host.exec(["cat", str(shared)]).stdout == "from the harness\n"
    assert host.exec(["sh", "-c", f"echo x > {shared}"], check=False).returncode != 0  # read-only
    assert host.exec(["ls", str(tmp_path)]).stdout.split() == ["fixture.txt"]  # nothing else
    host.exec(["sh", "-c", "echo 1 > /etc/herd-marker; echo 2 > /var/lib/herd-marker"])
    assert host.path("/etc/herd-marker") == host.root / "etc" / "herd-marker"
    assert host.path("/var/lib/herd-marker").read_text() == "2\n"
    assert not Path("/etc/herd-marker").exists()
    assert host.read_text("/etc/hostname") == "h1\n"
    with pytest.raises(SharedPathError):
        host.path("/proc/cpuinfo")


def test_cut_and_restore_ssh(fleet: TestFleet) -> None:
    h1, h2 = fleet["h1"], fleet["h2"]
    h1.cut_ssh("refuse")
    assert h1.ssh("true", check=False).returncode == 255
    assert h2.ssh("hostname").stdout.strip() == "h2"
    h1.restore_ssh()
    assert h1.ssh("hostname").stdout.strip() == "h1"

    h1.cut_ssh("hang")
    with pytest.raises(subprocess.TimeoutExpired):
        h1.ssh("true", timeout=1.5)
    h1.restore_ssh()
    assert h1.ssh("hostname").stdout.strip() == "h1"


def test_stop_is_clean_when_the_test_fails(tmp_path: Path) -> None:
    fleet = TestFleet(tmp_path / "fleet", ["h1"])
    pids: list[int] = []

    def failing_test() -> None:
        with fleet:
            pids.extend(fleet["h1"].processes())
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_test()
    assert pids
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == []
    assert pgrep(str(fleet.root)) == []


def test_start_failure_names_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(ports, "ssh_ports", lambda count: [port] * count)
        fleet = TestFleet(tmp_path / "fleet", ["h1"], start_timeout=3)
        with pytest.raises(HostStartError, match="Address already in use"):
            fleet.start()
    assert pgrep(str(fleet.root)) == []


def test_slots_registration_and_restart(tmp_path: Path) -> None:
    with TestFleet(tmp_path / "fleet", ["h1", "h2"], slots=3) as fleet:
        h1, h2 = fleet["h1"], fleet["h2"]
        assert len(set(h1.ports.web) | set(h2.ports.web) | set(h1.ports.streaming)) == 9
        assert h1.registration()["web_port_base"] == h1.web_port == h1.ports.web[0]
        assert h1.registration()["ssh_private_key"].startswith("-----BEGIN OPENSSH")
    assert not any(host.running for host in fleet)
    fleet.start()
    assert all(host.running for host in fleet)
    assert h2.ssh("hostname").stdout == "h2\n"
    fleet.stop()


def test_reboot_keeps_files_and_renews_run(fleet: TestFleet) -> None:
    host = fleet["h1"]
    host.exec(["sh", "-c", "echo kept > /srv/kept; echo gone > /run/gone"])
    unit = host.path("/etc/systemd/system/herd-worker.service")
    unit.parent.mkdir(parents=True)
    unit.write_text(
        "[Service]\nExecStart=/usr/bin/env sidekiq\n[Install]\nWantedBy=multi-user.target\n"
    )
    host.exec(["systemctl", "enable", "herd-worker"])
    host.reboot()
    assert host.read_text("/srv/kept") == "kept\n"
    assert host.exec(["test", "-e", "/run/gone"], check=False).returncode == 1
    assert host.ssh("cat /proc/1/comm").stdout.strip() == "systemd"
    # Enabled units start at boot, as systemd would start them.
    assert host.ssh("systemctl is-active herd-worker").stdout == "active\n"
    assert len(host.standin.calls("mastodon-standin-worker")) == 1


# -- helpers -----------------------------------------------------------------------


def pgrep(pattern: str) -> list[int]:
    result = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    return [int(pid) for pid in result.stdout.split()]


def install_web_unit(host: TestHost, repo: MastodonRepo) -> None:
    unit = subprocess.run(
        ["git", "--git-dir", str(repo.path), "show", "v4.5.1:dist/mastodon-web.service"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = host.path("/etc/systemd/system/mastodon-web.service")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(unit.replace("PORT=3000", f"PORT={host.web_port}"))
