"""Running a playbook against test hosts with ansible-runner, as Herd's workers do."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner


@dataclass
class PlaybookRun:
    rc: int
    status: str
    stats: dict[str, dict[str, int]]
    events: list[dict[str, Any]] = field(default_factory=list)
    stdout: str = ""

    def changed(self) -> dict[str, int]:
        """Changed tasks per host (every host present, 0 when none)."""
        hosts = set().union(*(self.stats.get(key, {}) for key in ("ok", "changed", "failures")))
        return {host: self.stats.get("changed", {}).get(host, 0) for host in sorted(hosts)}

    def facts(self, host: str) -> dict[str, Any]:
        """ansible_facts gathered on ``host`` (empty without fact gathering)."""
        for event in self.events:
            data = event.get("event_data", {})
            if event.get("event") == "runner_on_ok" and data.get("host") == host:
                facts = data.get("res", {}).get("ansible_facts")
                if facts and "ansible_hostname" in facts:
                    return facts
        return {}


def ansible_env(private_data_dir: Path) -> dict[str, str]:
    """Environment for ansible-playbook: this interpreter's bin/ first on PATH,
    and Ansible's own files (SSH control sockets, temp) inside the run's folder,
    so nothing is left in ~/.ansible and persistent connections die with it."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "ANSIBLE_HOME": str(private_data_dir / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(private_data_dir / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(private_data_dir / "cp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_FORCE_COLOR": "false",
        # As Herd's own runner (provisioning/ansible.py) sets it: fewer SSH
        # round trips, and no temporary files to hand over to become users.
        "ANSIBLE_PIPELINING": "true",
    }


def run_playbook(
    private_data_dir: Path,
    playbook: str | Path,
    inventory: Mapping[str, Any],
    extravars: Mapping[str, Any] | None = None,
    envvars: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> PlaybookRun:
    """Run ``playbook`` (a path, or YAML text) and collect stats and events."""
    private_data_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(playbook, str) and "\n" in playbook:
        path = private_data_dir / "project" / "playbook.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(playbook)
        playbook = path
    events: list[dict[str, Any]] = []
    env = {**ansible_env(private_data_dir), **(envvars or {})}
    # ansible-runner looks ansible-playbook up on this process's PATH.
    os.environ["PATH"] = env["PATH"]
    runner = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        playbook=str(playbook),
        inventory=dict(inventory),
        extravars=dict(extravars or {}),
        envvars=env,
        event_handler=lambda event: events.append(event) or True,
        quiet=True,
        **kwargs,
    )
    # runner.stdout would hand over an open file; read the artifact instead.
    stdout_file = Path(runner.config.artifact_dir) / "stdout"
    stdout = stdout_file.read_text() if stdout_file.exists() else ""
    return PlaybookRun(runner.rc, runner.status, runner.stats or {}, events, stdout)
