#!/usr/bin/python3 -IS
"""PID 1 of a test host: builds the host's file system view, runs sshd, reaps.

The harness copies this file to a folder as ``systemd`` and starts it as the
first process of a new PID, mount and UTS namespace (``unshare --fork``).
The kernel names a script's process after the script's file name, so
``/proc/1/comm`` reads ``systemd`` inside the host, and Ansible's
``service_mgr`` fact says ``systemd``.

Standard library only: it runs under the system Python, and after the
mounts the folder it was started from may be hidden under the private /tmp.

It talks to the harness over two inherited pipes (file descriptor numbers in
the JSON configuration given as the only argument):

- commands, one per line: ``ssh refuse``, ``ssh hang``, ``ssh up``, ``stop``.
  End of file means the harness has gone (even if it was killed), and the host
  shuts down: this is what keeps crashed test runs from leaving hosts behind.
- replies, one per line: ``mounted``, ``ok <command>`` or ``error <text>``;
  and unasked ``event sshd-exited <status>`` when sshd dies on its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from typing import Any

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

# The stage where the harness's per-host folder stays reachable while the
# mounts that may hide it (a private /tmp, /root ...) go up.
STAGE = "/run/.herd-stage"
SHUTDOWN_GRACE_SECONDS = 3.0

_libc = ctypes.CDLL(None, use_errno=True)


def log(message: str) -> None:
    # stderr is the host's console.log, opened by the harness.
    print(f"init: {message}", file=sys.stderr, flush=True)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    rc = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target} ({fstype or 'bind'}): {os.strerror(err)}")


def umount(target: str) -> None:
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def bind(source: str, target: str, readonly: bool = False) -> None:
    mount(source, target, None, MS_BIND | MS_REC, None)
    if readonly:
        # A bind mount only becomes read-only through a remount.
        mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)


def build_file_system(config: dict[str, Any]) -> None:
    """Mount the host's private view; every source comes from the stage."""
    root_fd = os.open(config["root"], os.O_PATH | os.O_DIRECTORY)
    shared_fds = [os.open(p, os.O_PATH) for p in config["shared_paths"]]
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m")
    os.makedirs(STAGE)
    # Through /proc/self/fd the folder is reachable wherever it lies, even
    # under a directory the next mounts cover.
    bind(f"/proc/self/fd/{root_fd}", STAGE)
    os.close(root_fd)
    for index, fd in enumerate(shared_fds):
        staged = f"{STAGE}-shared-{index}"
        make_mount_point(staged, directory=os.path.isdir(f"/proc/self/fd/{fd}"))
        bind(f"/proc/self/fd/{fd}", staged, readonly=True)
        os.close(fd)
    for target in config["overlays"]:
        name = target.strip("/").replace("/", "-")
        options = f"lowerdir={target},upperdir={STAGE}/{name},workdir={STAGE}/.work/{name}"
        mount("overlay", target, "overlay", 0, options)
    for target, folder in config["binds"].items():
        bind(f"{STAGE}/{folder}", target)
    for path in config["make_dirs"]:
        os.makedirs(path, exist_ok=True)
    os.chmod("/run/lock", 0o1777)
    bind(f"{STAGE}/harness", "/run/herd")
    for index, target in enumerate(config["shared_paths"]):
        share(f"{STAGE}-shared-{index}", target)
    umount(STAGE)
    os.rmdir(STAGE)


def share(staged: str, target: str) -> None:
    """Show a harness path (a fixture repository ...) at the same path inside."""
    if os.path.exists(target) and os.path.samestat(os.stat(target), os.stat(staged)):
        umount(staged)  # visible already: not under a private mount
    else:
        make_mount_point(target, directory=os.path.isdir(staged))
        bind(staged, target, readonly=True)
        umount(staged)
    if os.path.isdir(staged):
        os.rmdir(staged)
    else:
        os.remove(staged)


def make_mount_point(path: str, directory: bool) -> None:
    """A bind mount needs a directory for a directory, a file for a file."""
    if directory:
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()


class Init:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.commands = os.fdopen(config["command_fd"], "rb", buffering=0)
        self.replies = os.fdopen(config["reply_fd"], "w", buffering=1)
        self.sshd: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.buffer = b""

    def reply(self, line: str) -> None:
        with contextlib.suppress(BrokenPipeError):  # the harness has gone
            self.replies.write(line + "\n")

    def start_sshd(self) -> None:
        self.sshd = subprocess.Popen(self.config["sshd"], stdin=subprocess.DEVNULL, close_fds=True)
        log(f"sshd started, pid {self.sshd.pid}")

    def start_enabled_units(self) -> None:
        """What systemd does at boot: start the units enabled in this host."""
        units = self.config.get("boot_units", [])
        if units:
            # Through the stand-in systemctl (the host's /usr/bin/systemctl).
            subprocess.run(["/usr/bin/systemctl", "start", *units], check=False)

    def sshd_pids(self) -> list[int]:
        """The listener and every session process (their comm is sshd)."""
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/comm") as comm:
                        if comm.read().strip() == "sshd":
                            pids.append(int(entry))
                except OSError:
                    continue
        return pids

    def ssh(self, mode: str) -> None:
        if mode == "refuse":
            # Dropping the sessions too makes Ansible's persistent connections
            # fail at once instead of living on after the listener is gone.
            for pid in self.sshd_pids():
                self._signal(pid, signal.SIGCONT)
                self._signal(pid, signal.SIGKILL)
            self.sshd = None
        elif mode == "hang":
            for pid in self.sshd_pids():
                self._signal(pid, signal.SIGSTOP)
        elif mode == "up":
            for pid in self.sshd_pids():
                self._signal(pid, signal.SIGCONT)
            if self.sshd is None or self.sshd.poll() is not None:
                self.start_sshd()
        else:
            raise ValueError(f"unknown ssh mode {mode!r}")

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.sshd is not None and pid == self.sshd.pid:
                self.sshd.returncode = os.waitstatus_to_exitcode(status)
                if not self.stopping:
                    # Tells a harness waiting for sshd to stop waiting.
                    log(f"sshd exited with {self.sshd.returncode}")
                    self.reply(f"event sshd-exited {self.sshd.returncode}")

    def handle_command(self, line: str) -> None:
        words = line.split()
        try:
            if words == ["stop"]:
                self.stopping = True
            elif len(words) == 2 and words[0] == "ssh":
                self.ssh(words[1])
            else:
                raise ValueError(f"unknown command {line!r}")
        except (OSError, ValueError) as exc:
            self.reply(f"error {exc}")
            return
        self.reply(f"ok {line}")

    def read_commands(self) -> None:
        chunk = self.commands.read(4096)
        if not chunk:
            log("harness gone: shutting down")
            self.stopping = True
            return
        self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.handle_command(line.decode().strip())

    def run(self) -> int:
        wake_read, wake_write = socket.socketpair()
        wake_write.setblocking(False)
        signal.set_wakeup_fd(wake_write.fileno())
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            # A Python handler is what makes the kernel deliver these to a
            # namespace's PID 1 at all; the work happens in the loop.
            signal.signal(sig, self._on_signal)
        selector = selectors.DefaultSelector()
        selector.register(wake_read, selectors.EVENT_READ)
        selector.register(self.commands, selectors.EVENT_READ)
        self.start_sshd()
        self.start_enabled_units()
        while not self.stopping:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is wake_read:
                    wake_read.recv(4096)
                else:
                    self.read_commands()
            self.reap()
        return self.shutdown()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self.stopping = True

    def shutdown(self) -> int:
        """Stop everything in the namespace: TERM, a grace period, then KILL."""
        self._kill_all(signal.SIGCONT)  # a stopped ("hang") sshd cannot die of TERM
        self._kill_all(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        while time.monotonic() < deadline and self._others_alive():
            self.reap()
            time.sleep(0.02)
        self._kill_all(signal.SIGKILL)
        self.reap()
        self.reply("ok stop")
        return 0

    @staticmethod
    def _kill_all(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, sig)  # from PID 1: every other process of the namespace

    @staticmethod
    def _others_alive() -> bool:
        return any(entry.isdigit() and entry != "1" for entry in os.listdir("/proc"))


def main() -> int:
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    init = Init(config)
    try:
        socket.sethostname(config["hostname"])
        build_file_system(config)
    except OSError as exc:
        log(f"could not build the host: {exc}")
        init.reply(f"error {exc}")
        return 1
    init.reply("mounted")
    return init.run()


if __name__ == "__main__":
    sys.exit(main())
