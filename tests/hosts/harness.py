"""Test hosts: sshd servers in their own namespaces, reached by Ansible over SSH.

    with TestFleet(tmp_path, ["h1", "h2"]) as fleet:
        ansible_runner.run(..., inventory=fleet.inventory())
        fleet["h1"].path("/home/mastodon/live/.env.production").read_text()

See README.md next to this file for the layout, the stand-in and the hazards.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import install, ports, sshd
from .host import FleetFiles, HostStartError, SshCut, TestHost
from .requirements import HostRequirementError, check_requirements

__all__ = [
    "FleetFiles",
    "HostRequirementError",
    "HostStartError",
    "SshCut",
    "TestFleet",
    "TestHost",
]

INIT_SOURCE = Path(__file__).with_name("init_process.py")


class TestFleet:
    """A set of test hosts sharing one SSH key pair, one host key and fixtures.

    ``shared_paths`` are folders or files of the real machine (a fixture git
    repository ...) shown read-only at the same path inside every host, even
    when the path lies under a folder that is private to the hosts (/tmp).
    """

    __test__ = False

    def __init__(
        self,
        root: Path | str,
        names: Sequence[str] = ("h1", "h2"),
        *,
        shared_paths: Sequence[Path | str] = (),
        slots: int = 1,
        start_timeout: float = 15.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.shared_paths = [Path(p).resolve() for p in shared_paths]
        self.slots = slots
        self.start_timeout = start_timeout
        self.hosts: dict[str, TestHost] = {}
        self._names = list(names)
        self._files: FleetFiles | None = None

    # -- set-up ---------------------------------------------------------------

    @property
    def files(self) -> FleetFiles:
        """Keys, PID 1 program and stand-in library, made once per fleet."""
        if self._files is None:
            check_requirements()
            self._files = self._make_files()
        return self._files

    @property
    def private_key(self) -> Path:
        """The SSH key that logs in as root on every host of the fleet."""
        return self.files.private_key

    def _make_files(self) -> FleetFiles:
        keys = self.root / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        # Named systemd: the kernel names the process after the script file,
        # and Ansible names the service manager after PID 1's name.
        init_program = self.root / "sbin" / "systemd"
        init_program.parent.mkdir(exist_ok=True)
        shutil.copy(INIT_SOURCE, init_program)
        init_program.chmod(0o755)
        return FleetFiles(
            root=self.root,
            private_key=sshd.generate_key(keys / "id_ed25519", "herd-test-harness"),
            public_key=keys / "id_ed25519.pub",
            host_key=sshd.generate_key(keys / "ssh_host_ed25519_key", "herd-test-host"),
            init_program=init_program,
            standin_library=install.build_standin_library(self.root / "standin-lib"),
            shared_paths=tuple(self.shared_paths),
            safe_directories=tuple(str(p) for p in self.shared_paths if _is_git_repository(p)),
        )

    def start(self) -> Self:
        """Start every host that is not running (all of them, the first time)."""
        files = self.files
        names = [name for name in self._names if name not in self.hosts]
        for name, host_ports in zip(names, ports.allocate(len(names), self.slots), strict=True):
            self.hosts[name] = TestHost(files, name, host_ports)
        stopped = [host for host in self.hosts.values() if not host.running]
        try:
            for host in stopped:  # all spawn first, then all are awaited
                host._spawn()
            deadline = time.monotonic() + self.start_timeout
            for host in stopped:
                host._wait_until_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def add_host(self, name: str) -> TestHost:
        """Start one more host in a running fleet."""
        if name in self.hosts:
            raise ValueError(f"{name} is already in the fleet")
        self._names.append(name)
        self.start()
        return self.hosts[name]

    def stop(self) -> None:
        """Stop every host; safe to call twice and after a failed start."""
        errors = []
        for host in self.hosts.values():  # they all shut down at once
            host.request_stop()
        for host in self.hosts.values():
            try:
                host.stop()
            except RuntimeError as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError("; ".join(errors))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- access -----------------------------------------------------------------

    def __getitem__(self, name: str) -> TestHost:
        return self.hosts[name]

    def __iter__(self) -> Iterator[TestHost]:
        return iter(self.hosts.values())

    def __len__(self) -> int:
        return len(self.hosts)

    def inventory(
        self, group: str | None = None, host_vars: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """An Ansible inventory (YAML/JSON structure) of the fleet's hosts.

        With ``group``, the hosts are members of that group under ``all``;
        ``host_vars`` adds or overrides variables per host name.
        """
        hosts = {
            name: {**host.inventory_vars(), **(host_vars or {}).get(name, {})}
            for name, host in self.hosts.items()
        }
        if group is None:
            return {"all": {"hosts": hosts}}
        return {"all": {"children": {group: {"hosts": hosts}}}}


def _is_git_repository(path: Path) -> bool:
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    return bare or (path / ".git").exists()
