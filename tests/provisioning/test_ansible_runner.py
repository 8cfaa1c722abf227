"""The ansible-runner wrapper with real ansible-playbook runs (a local
connection, so no host is needed): events, summaries, redaction, timeout,
cancel, and no private folder left behind."""

from __future__ import annotations

import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from provisioning.ansible import Inventory, PlaybookResult, TaskEvent, run_playbook
from provisioning.redaction import MASK, Redactor

SECRET = "s3cr3t-value-that-must-not-leak"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----"

PLAYBOOK = """\
- name: Demo
  hosts: all
  gather_facts: false
  tasks:
    - name: Say the secret
      ansible.builtin.command: echo "token is {{ demo_secret }}"
      changed_when: false
    - name: Change something
      ansible.builtin.copy:
        content: "hello\\n"
        dest: "{{ demo_dir }}/greeting"
        mode: "0600"
    - name: Skip this
      ansible.builtin.debug:
        msg: never
      when: false
"""
SLOW = """\
- name: Slow
  hosts: all
  gather_facts: false
  tasks:
    - name: Quick first
      ansible.builtin.debug:
        msg: started
    - name: Wait
      ansible.builtin.command: sleep 60
"""


@pytest.fixture
def playbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "demo.yml").write_text(PLAYBOOK)
    (folder / "slow.yml").write_text(SLOW)
    return folder


def local(name: str = "box") -> Inventory:
    return Inventory(
        hosts={name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        ssh_keys={name: KEY},
    )


def run(
    playbooks: Path,
    workdir: Path,
    playbook: str,
    events: list[TaskEvent],
    extravars: dict | None = None,
    **kwargs,
) -> PlaybookResult:
    return run_playbook(
        playbook,
        local(),
        extravars or {},
        workdir,
        "job-1",
        events.append,
        Redactor([SECRET]),
        playbooks_dir=playbooks,
        **kwargs,
    )


def test_each_task_becomes_a_redacted_event_and_each_host_a_summary(
    playbooks: Path, tmp_path: Path
) -> None:
    events: list[TaskEvent] = []
    seen_key_mode: list[int] = []

    def spy(event: TaskEvent) -> None:
        # While the run lasts, the SSH key sits in the private folder, 0600.
        for key in (tmp_path / "runs").rglob("*.key"):
            seen_key_mode.append(stat.S_IMODE(key.stat().st_mode))
        events.append(event)

    result = run_playbook(
        "demo.yml",
        local(),
        {"demo_secret": SECRET, "demo_dir": str(tmp_path)},
        tmp_path / "runs",
        "job-1",
        spy,
        Redactor([SECRET]),
        playbooks_dir=playbooks,
    )
    assert result.succeeded
    assert [(e.task, e.status, e.changed) for e in events] == [
        ("Say the secret", "ok", False),
        ("Change something", "changed", True),
        ("Skip this", "skipped", False),
    ]
    assert all(e.host == "box" and e.play == "Demo" for e in events)
    assert all(e.duration_ms is not None and e.duration_ms >= 0 for e in events)
    said = events[0].result
    assert said["stdout"] == f"token is {MASK}"
    assert SECRET not in str([e.result for e in events])
    assert vars(result.hosts["box"]) == {
        "ok": 2,
        "changed": 1,
        "failed": 0,
        "unreachable": 0,
        "skipped": 1,
    }
    assert seen_key_mode
    assert set(seen_key_mode) == {0o600}
    # Nothing of the run stays on disk: inventory, variables, key, artifacts.
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_failed_task_fails_the_run_and_names_the_host(playbooks: Path, tmp_path: Path) -> None:
    (playbooks / "fail.yml").write_text(
        "- name: Fail\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Break\n      ansible.builtin.command: 'false'\n"
    )
    events: list[TaskEvent] = []
    result = run(playbooks, tmp_path / "runs", "fail.yml", events)
    assert not result.succeeded
    assert result.status == "failed"
    assert result.failed_hosts() == ["box"]
    assert events[-1].status == "failed"
    assert events[-1].result["rc"] == 1


def test_a_run_past_its_timeout_is_stopped(playbooks: Path, tmp_path: Path) -> None:
    events: list[TaskEvent] = []
    started = time.monotonic()
    result = run(playbooks, tmp_path / "runs", "slow.yml", events, timeout_seconds=4)
    assert time.monotonic() - started < 30
    assert result.status == "timeout"
    assert not result.succeeded
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_cancel_request_stops_the_run(playbooks: Path, tmp_path: Path) -> None:
    events: list[TaskEvent] = []
    cancel = threading.Event()

    def record(event: TaskEvent) -> None:
        events.append(event)
        cancel.set()  # staff pressed cancel once the first task reported

    started = time.monotonic()
    result = run_playbook(
        "slow.yml",
        local(),
        {},
        tmp_path / "runs",
        "job-1",
        record,
        Redactor(),
        playbooks_dir=playbooks,
        should_cancel=cancel.is_set,
    )
    assert time.monotonic() - started < 30
    assert result.status == "canceled"
    assert [e.task for e in events] == ["Quick first"]
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_killed_runs_leftovers_are_removed_by_the_next_run(
    playbooks: Path, tmp_path: Path
) -> None:
    # A worker SIGKILLed mid-run cannot clean up; the job's next run can.
    leftover = tmp_path / "runs" / "job-1" / "env"
    leftover.mkdir(parents=True)
    (leftover / "extravars").write_text(f"demo_secret: {SECRET}\n")
    events: list[TaskEvent] = []
    result = run(
        playbooks,
        tmp_path / "runs",
        "demo.yml",
        events,
        {"demo_secret": "x" * 9, "demo_dir": "/tmp"},
    )
    assert result.succeeded
    assert list((tmp_path / "runs").iterdir()) == []
