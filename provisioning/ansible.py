"""Running a playbook through ansible-runner, with its events captured.

Each run gets its own private data directory (mode 0700) holding the
inventory, variables and SSH key; it is removed when the run ends, so no
secret stays on disk. Events stream to a callback as they happen, already
redacted; nothing is kept in ansible-runner's artifact folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from provisioning.redaction import Redactor

PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks"
TASK_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
    "runner_item_on_failed": "failed",
}


@dataclass(frozen=True)
class TaskEvent:
    host: str | None
    play: str | None
    task: str | None
    action: str | None
    status: str
    changed: bool
    duration_ms: int | None
    result: dict[str, Any]


@dataclass
class HostSummary:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass
class PlaybookResult:
    status: str  # successful, failed, timeout, canceled
    rc: int
    hosts: dict[str, HostSummary] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def failed_hosts(self) -> list[str]:
        return sorted(h for h, s in self.hosts.items() if s.failed or s.unreachable)


@dataclass
class Inventory:
    """Hosts with their connection variables; `ssh_keys` maps a host to its
    private key text, written into the run's private directory only."""

    hosts: dict[str, dict[str, Any]]
    ssh_keys: dict[str, str] = field(default_factory=dict)
    group_vars: dict[str, Any] = field(default_factory=dict)


def run_playbook(
    playbook: str,
    inventory: Inventory,
    extravars: dict[str, Any],
    workdir: Path,
    ident: str,
    on_event: Callable[[TaskEvent], None],
    redactor: Redactor,
    timeout_seconds: int = 3600,
    should_cancel: Callable[[], bool] = lambda: False,
    playbooks_dir: Path = PLAYBOOKS,
    forks: int = 10,
    skip_tags: list[str] | None = None,
) -> PlaybookResult:
    private = workdir / ident
    if private.exists():
        shutil.rmtree(private)
    private.mkdir(parents=True, mode=0o700)
    try:
        hosts = _write_keys(private, inventory)
        result = PlaybookResult(status="failed", rc=-1)
        started = time.monotonic()

        def handle(event: dict[str, Any]) -> bool:
            task_event = _task_event(event, redactor)
            if task_event is not None:
                on_event(task_event)
            if event.get("event") == "playbook_on_stats":
                result.hosts = _summaries(event.get("event_data", {}))
            return False  # keep nothing in the artifact folder

        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(playbooks_dir),
            playbook=playbook,
            inventory={"all": {"hosts": hosts, "vars": inventory.group_vars}},
            extravars=extravars,
            envvars=_environment(),
            ident=ident,
            event_handler=handle,
            cancel_callback=should_cancel,
            timeout=timeout_seconds,
            forks=forks,
            skip_tags=",".join(skip_tags) if skip_tags else None,
            quiet=True,
            suppress_env_files=True,
        )
        result.status, result.rc = runner.status, runner.rc if runner.rc is not None else -1
        result.seconds = time.monotonic() - started
        return result
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _write_keys(private: Path, inventory: Inventory) -> dict[str, dict[str, Any]]:
    hosts = {name: dict(variables) for name, variables in inventory.hosts.items()}
    keys = private / "keys"
    keys.mkdir(mode=0o700)
    for name, key in inventory.ssh_keys.items():
        path = keys / f"{name}.key"
        path.write_text(key if key.endswith("\n") else key + "\n")
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        hosts[name]["ansible_ssh_private_key_file"] = str(path)
    return hosts


def _environment() -> dict[str, str]:
    # ansible-runner starts ansible-playbook by name: our interpreter's bin
    # folder must come first on PATH, or the run fails with rc 127.
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        # Pipelining halves the SSH round trips per task.
        "ANSIBLE_PIPELINING": "True",
    }


def _task_event(event: dict[str, Any], redactor: Redactor) -> TaskEvent | None:
    status = TASK_EVENTS.get(event.get("event", ""))
    if status is None:
        return None
    data = event.get("event_data", {})
    res = data.get("res") or {}
    changed = bool(res.get("changed")) if isinstance(res, dict) else False
    if status == "ok" and changed:
        status = "changed"
    duration = data.get("duration")
    return TaskEvent(
        host=data.get("host"),
        play=data.get("play"),
        task=data.get("task"),
        action=data.get("task_action"),
        status=status,
        changed=changed,
        duration_ms=int(duration * 1000) if isinstance(duration, int | float) else None,
        result=redactor.value(_trim(res)) if isinstance(res, dict) else {},
    )


def _trim(res: dict[str, Any]) -> dict[str, Any]:
    # Facts and invocation arguments are bulky and the arguments may hold
    # secrets; what an operator needs is the message, the command's output
    # and the return code.
    keep = (
        "msg",
        "rc",
        "stdout",
        "stderr",
        "changed",
        "failed",
        "skipped",
        "unreachable",
        "censored",
        "cmd",
        "dest",
        "path",
        "state",
        "status",
        "url",
    )
    return {key: res[key] for key in keep if key in res}


def _summaries(data: dict[str, Any]) -> dict[str, HostSummary]:
    hosts: dict[str, HostSummary] = {}
    for attr, key in (
        ("ok", "ok"),
        ("changed", "changed"),
        ("failed", "failures"),
        ("unreachable", "dark"),
        ("skipped", "skipped"),
    ):
        for host, count in (data.get(key) or {}).items():
            setattr(hosts.setdefault(host, HostSummary()), attr, count)
    return hosts
