"""One test host: an sshd in its own namespaces, with PID 1 named systemd.

A host is started as ``unshare --mount --uts --pid --fork`` running
init_process.py, which mounts the host's private folders (layout.py), starts
sshd and talks to this side over two pipes. See README.md for the hazards.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import install, layout, process, sshd
from .control import StandinControl
from .ports import HostPorts

SYSTEM_PYTHON = "/usr/bin/python3"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNSHARE = (
    "unshare",
    "--mount",
    "--uts",
    "--pid",
    "--fork",
    "--mount-proc",
    "--propagation",
    "private",
    # If unshare dies, so does the host's PID 1, and with it the namespace.
    "--kill-child",
)

SshCut = Literal["refuse", "hang"]

# Hosts still running when the interpreter exits (a test forgot to stop its
# fleet, or pytest was interrupted) are stopped here.
_RUNNING: set[TestHost] = set()


class HostStartError(RuntimeError):
    """A host did not come up; the message carries its console and sshd logs."""


@dataclass(frozen=True)
class FleetFiles:
    """What a fleet prepares once for all its hosts (see TestFleet)."""

    root: Path
    private_key: Path
    public_key: Path
    host_key: Path
    init_program: Path
    standin_library: Path
    shared_paths: tuple[Path, ...]
    safe_directories: tuple[str, ...]


class TestHost:
    """One test host. Start and stop it through its fleet, or on its own."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, files: FleetFiles, name: str, host_ports: HostPorts) -> None:
        self.files = files
        self.name = name
        self.root = files.root / "hosts" / name
        self.ports = host_ports
        self.ssh_port = host_ports.ssh
        # Slot 0's ports; host.ports.web / .streaming hold every slot's.
        self.web_port = host_ports.web_base
        self.streaming_port = host_ports.streaming_base
        self.standin = StandinControl(self)
        self._unshare: subprocess.Popen[bytes] | None = None
        self._commands: int | None = None
        self._replies: int | None = None
        self._init_pid: int | None = None
        self._namespace: str | None = None
        self.startup_seconds: float | None = None
        self._started_at = 0.0

    def __repr__(self) -> str:
        return f"<TestHost {self.name} ssh=127.0.0.1:{self.ssh_port}>"

    # -- life cycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._unshare is not None and self._unshare.poll() is None

    @property
    def pid(self) -> int:
        """The real machine's PID of the host's PID 1 (for nsenter, /proc)."""
        if self._init_pid is None or not self.running:
            raise RuntimeError(f"{self.name} is not running")
        return self._init_pid

    def start(self, timeout: float = 15.0) -> None:
        self._spawn()
        self._wait_until_ready(time.monotonic() + timeout)

    def _prepare(self) -> Path:
        harness = self.root / "harness"
        if not harness.exists():
            # First boot only: after a reboot the host keeps what it changed
            # in its /etc, /usr/local/bin and the stand-in's state.
            layout.make_folders(self.root)
            install.install_standin(self.root, self.files.standin_library)
            install.write_identity(self.root, self.name, self.files.safe_directories)
        shutil.copy2(self.files.host_key, harness / "ssh_host_ed25519_key")
        (harness / "authorized_keys.root").write_text(self.files.public_key.read_text())
        (harness / "sshd_config").write_text(sshd.sshd_config(self.ssh_port, str(self.root)))
        return harness

    def _spawn(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._started_at = time.monotonic()
        harness = self._prepare()
        command_read, self._commands = os.pipe()
        self._replies, reply_write = os.pipe()
        config = {
            "hostname": self.name,
            "root": str(self.root),
            "overlays": list(layout.OVERLAYS),
            "binds": layout.BINDS,
            "make_dirs": list(layout.RUN_DIRS),
            "boot_units": self._enabled_units(),
            "shared_paths": [str(p) for p in self.files.shared_paths],
            "command_fd": command_read,
            "reply_fd": reply_write,
            # -E keeps sshd's log; the host root in the title lets pgrep find it.
            "sshd": [
                "/usr/sbin/sshd",
                "-D",
                "-f",
                f"{layout.HARNESS_DIR}/sshd_config",
                "-E",
                f"{layout.HARNESS_DIR}/sshd.log",
                "-o",
                f"SetEnv=HERD_TEST_HOST={self.root}",
            ],
        }
        (harness / "init.json").write_text(json.dumps(config, indent=2))
        with open(harness / "console.log", "ab") as console:
            self._unshare = subprocess.Popen(
                [*UNSHARE, str(self.files.init_program), str(harness / "init.json")],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                pass_fds=(command_read, reply_write),
                env={"PATH": HOST_PATH, "LANG": "C.UTF-8"},
            )
        os.close(command_read)
        os.close(reply_write)
        _RUNNING.add(self)

    def _enabled_units(self) -> list[str]:
        """Units this host enabled (links in its own /etc, not the machine's)."""
        wants = self.root / "etc" / "systemd" / "system"
        return sorted({link.name for link in wants.glob("*.wants/*") if link.is_symlink()})

    def _wait_until_ready(self, deadline: float) -> None:
        reply = self._read_reply(deadline)
        if reply != "mounted":
            self._fail_start(f"init answered {reply!r}")
        problem = self._wait_for_sshd(deadline)
        if problem:
            self._fail_start(problem)
        assert self._unshare is not None
        children = process.children_of(self._unshare.pid)
        if len(children) != 1:
            self._fail_start(f"expected one init process under unshare, found {children}")
        self._init_pid = children[0]
        self._namespace = process.pid_namespace(self._init_pid)
        self.startup_seconds = time.monotonic() - self._started_at

    def _wait_for_sshd(self, deadline: float) -> str | None:
        """None once sshd greets on its port, else why it will not."""
        while time.monotonic() < deadline:
            if sshd.read_banner(self.ssh_port, timeout=0.5):
                return None
            event = self._read_line(time.monotonic() + 0.01)
            if event.startswith("event sshd-exited"):
                return f"sshd exited with status {event.split()[-1]}"
            if event == "<host exited>":
                return "the host's PID 1 exited"
        return "sshd did not answer on its port"

    def _read_line(self, deadline: float) -> str:
        assert self._replies is not None
        line = b""
        while not line.endswith(b"\n"):
            timeout = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._replies], [], [], timeout)
            if not ready:
                return "<timeout>"
            chunk = os.read(self._replies, 1)
            if not chunk:
                return "<host exited>"
            line += chunk
        return line.decode().strip()

    def _read_reply(self, deadline: float) -> str:
        """The answer to a command, past any event lines sent meanwhile."""
        while True:
            line = self._read_line(deadline)
            if not line.startswith("event "):
                return line

    def _fail_start(self, reason: str) -> None:
        logs = "\n".join(
            f"--- {name} ---\n{self.log(name)[-3000:]}" for name in ("console.log", "sshd.log")
        )
        self.stop()
        raise HostStartError(f"test host {self.name} did not start: {reason}\n{logs}")

    def log(self, name: str = "sshd.log") -> str:
        """One of the harness's logs: console.log (PID 1) or sshd.log."""
        path = self.root / "harness" / name
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every process of the host; its folders stay for inspection."""
        _RUNNING.discard(self)
        if self._unshare is None:
            return
        self.request_stop()
        try:
            self._unshare.wait(timeout)
        except subprocess.TimeoutExpired:
            # SIGKILL to a namespace's PID 1 takes every process in it along.
            if self._init_pid is not None:
                os.kill(self._init_pid, signal.SIGKILL)
            self._unshare.kill()
            self._unshare.wait()
        for fd in (self._commands, self._replies):
            if fd is not None:
                os.close(fd)
        self._unshare = self._commands = self._replies = None
        self._init_pid = None
        leftovers = self.processes()
        if leftovers:
            raise RuntimeError(f"{self.name}: processes left after stop: {leftovers}")

    def request_stop(self) -> None:
        """Ask PID 1 to stop the host without waiting (stop() then waits)."""
        if self._unshare is not None and self._unshare.poll() is None:
            self._send("stop")

    def reboot(self, timeout: float = 15.0) -> None:
        """Stop and start again: /run is new, every other folder is kept."""
        self.stop()
        self.start(timeout)

    def processes(self) -> list[int]:
        """Real-machine PIDs of every process in the host (none once stopped)."""
        return process.members_of(self._namespace) if self._namespace else []

    # -- faults -------------------------------------------------------------

    def cut_ssh(self, mode: SshCut = "refuse") -> None:
        """Make SSH fail: "refuse" stops sshd and drops every session,
        "hang" freezes sshd so connections open but never answer."""
        self._command(f"ssh {mode}")

    def restore_ssh(self) -> None:
        self._command("ssh up")
        problem = self._wait_for_sshd(time.monotonic() + 10)
        if problem:
            raise RuntimeError(f"{self.name}: {problem}\n{self.log()[-2000:]}")

    def _send(self, line: str) -> None:
        if self._commands is None:
            raise RuntimeError(f"{self.name} is not running")
        with contextlib.suppress(BrokenPipeError):  # PID 1 has gone already
            os.write(self._commands, line.encode() + b"\n")

    def _command(self, line: str) -> None:
        self._send(line)
        reply = self._read_reply(time.monotonic() + 10)
        if reply != f"ok {line}":
            raise RuntimeError(f"{self.name}: {line!r} failed: {reply}")

    # -- files and commands -------------------------------------------------

    def path(self, inner_path: str) -> Path:
        """The real path of a host file in the host's own folders.

        For /etc, /usr and /var this is the overlay's upper folder: it holds
        what the host wrote, not the real machine's files that show through
        (use read_text for the merged view). /run exists only while the host
        runs and is reached through /proc.
        """
        folder = layout.folder_for(self.root, inner_path)
        if folder is not None:
            return folder
        return Path(f"/proc/{self.pid}/root") / inner_path.lstrip("/")

    def read_text(self, inner_path: str) -> str:
        """A file as the host sees it (merged view while running)."""
        if self.running:
            return (Path(f"/proc/{self.pid}/root") / inner_path.lstrip("/")).read_text()
        return self.path(inner_path).read_text()

    def exec(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
        cwd: str = "/",
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host without SSH (nsenter), as root or ``user``."""
        inner = [
            "env",
            "-i",
            f"PATH={HOST_PATH}",
            "LANG=C.UTF-8",
            "HOME=/root",
            "sh",
            "-c",
            'cd "$0" && exec "$@"',
            cwd,
            *argv,
        ]
        if user is not None:
            # setpriv resolves the name inside the host, where the user exists.
            inner = ["setpriv", "--reuid", user, "--regid", user, "--init-groups", "--reset-env"]
            inner += ["sh", "-c", 'cd "$0" && exec "$@"', cwd, *argv]
        return subprocess.run(
            ["nsenter", "--target", str(self.pid), "--mount", "--uts", "--pid", "--", *inner],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def ssh(
        self, command: str, *, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command over real SSH as root."""
        return subprocess.run(
            [
                "ssh",
                *sshd.SSH_OPTIONS,
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-i",
                str(self.files.private_key),
                "-p",
                str(self.ssh_port),
                "root@127.0.0.1",
                command,
            ],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def inventory_vars(self) -> dict[str, Any]:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.ssh_port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.files.private_key),
            "ansible_ssh_common_args": sshd.SSH_COMMON_ARGS,
            "ansible_python_interpreter": SYSTEM_PYTHON,
            # The hosts share the real machine's network, so each needs its
            # own ports for Mastodon's web and streaming processes.
            "mastodon_web_port": self.web_port,
            "mastodon_streaming_port": self.streaming_port,
        }

    def registration(self) -> dict[str, Any]:
        """What registering this host with Herd takes (address, SSH, port bases)."""
        return {
            "name": self.name,
            "address": "127.0.0.1",
            "ssh_port": self.ssh_port,
            "ssh_user": "root",
            "ssh_private_key": self.files.private_key.read_text(),
            "web_port_base": self.ports.web_base,
            "streaming_port_base": self.ports.streaming_base,
            "slots": self.ports.slots,
        }


@atexit.register
def _stop_forgotten_hosts() -> None:
    for host in list(_RUNNING):
        with contextlib.suppress(OSError, RuntimeError):
            host.stop()
