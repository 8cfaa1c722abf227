"""Running units: what each Mastodon unit starts, and its state under /run/standin.

No real systemd runs in a test host, so the stand-in decides from the unit
what to run: Mastodon's web unit (puma) runs the stand-in web process, the
templated streaming unit a small HTTP server on PORT, sidekiq an idle worker.
``ExecStart`` itself is never run (the rbenv shims it names do not exist
on a test host). nginx is only checked with ``nginx -t``; other units
(postgresql, redis ...) just change state.

Like systemd with ``Type=simple``, ``start`` succeeds once the process is
started; a process that dies leaves the unit "failed". Unlike systemd,
``Restart=`` is not honoured.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from .common import ToolExit, warn
from .units import RUN_DIR, Unit

STATE_DIR = RUN_DIR / "units"
LOG_DIR = Path("/var/log/standin")
BIN = "/usr/local/bin"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
STOP_TIMEOUT = 10.0


@dataclass
class State:
    active: str = "inactive"  # active, inactive, failed
    sub: str = "dead"  # running, exited, dead, failed
    pid: int = 0
    starttime: str = ""
    since: float = 0.0
    result: str = "success"


def kind_of(unit: Unit) -> str:
    """What the stand-in runs for this unit."""
    exec_start = unit.get("Service", "ExecStart")
    base = unit.name.rpartition(".")[0]
    if unit.get("Service", "Type") == "oneshot":
        return "oneshot"
    if "puma" in exec_start or base.startswith("mastodon-web"):
        return "web"
    if "sidekiq" in exec_start or base.startswith("mastodon-sidekiq"):
        return "worker"
    if "streaming" in exec_start or base.startswith("mastodon-streaming"):
        return "streaming"
    if base == "nginx":
        return "nginx"
    if base in ("ssh", "sshd"):
        return "sshd"
    return "fake"


# -- state ---------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def alive(state: State) -> bool:
    fields = _stat_fields(state.pid) if state.pid else None
    # fields[0] is the process state, fields[19] its start time: a zombie
    # or a new process under a reused PID is not our service.
    return bool(fields) and fields[0] != "Z" and fields[19] == state.starttime


def read_state(name: str) -> State:
    path = STATE_DIR / f"{name}.json"
    state = State(**json.loads(path.read_text())) if path.is_file() else State()
    if state.active == "active" and state.pid and not alive(state):
        state = State(active="failed", sub="failed", since=time.time(), result="exit-code")
        write_state(name, state)
    return state


def current_state(unit: Unit) -> State:
    """The unit's state; the harness's own sshd counts as ssh.service running."""
    state = read_state(unit.name)
    if kind_of(unit) == "sshd" and state.since == 0:
        return State("active", "running")
    return state


def write_state(name: str, state: State) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = STATE_DIR / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state)))
    os.replace(tmp, path)


def known_units() -> list[str]:
    return sorted(p.stem for p in STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []


# -- processes -----------------------------------------------------------------


def service_environment(unit: Unit, user: pwd.struct_passwd | None) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "HERD_STANDIN_UNIT": unit.name}
    if user is not None:
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name, SHELL=user.pw_shell)
    env.update(unit.environment())
    # The dist units preload jemalloc, which a test host does not have.
    env.pop("LD_PRELOAD", None)
    return env


def spawn(unit: Unit, program: str) -> State:
    """Start the stand-in process for ``unit`` as its User in its WorkingDirectory."""
    user_name = unit.get("Service", "User")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{unit.name}.log"
    with open(log_path, "a") as log:
        try:
            user = pwd.getpwnam(user_name) if user_name else None
        except KeyError:
            return _failed(
                log,
                f"{unit.name}: Failed to determine user credentials: No such process (217/USER)",
            )
        workdir = unit.get("Service", "WorkingDirectory")
        cwd = _working_directory(workdir, user)
        if cwd is None:
            return _failed(
                log,
                f"{unit.name}: Changing to the requested working directory failed: "
                f"{workdir} (200/CHDIR)",
            )
        try:
            env = service_environment(unit, user)
        except FileNotFoundError as exc:
            return _failed(log, f"{unit.name}: {exc}")
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {unit.name} ({program})\n")
        log.flush()
        process = subprocess.Popen(
            [f"{BIN}/{program}"],
            cwd=cwd,
            env=env,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    fields = _stat_fields(process.pid) or [""] * 20
    return State("active", "running", process.pid, fields[19], time.time())


def _working_directory(setting: str, user: pwd.struct_passwd | None) -> str | None:
    optional = setting.startswith("-")
    path = setting.lstrip("-")
    if path == "~":
        path = user.pw_dir if user else "/root"
    if not path:
        return "/"
    if os.path.isdir(path):
        return path
    return "/" if optional else None


def _failed(log: TextIO, message: str) -> State:
    print(message, file=log)
    return State("failed", "failed", since=time.time(), result="exit-code")


def terminate(state: State) -> None:
    """SIGTERM the service's process group, SIGKILL what is left after a while."""
    if not alive(state):
        return
    _kill_group(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and alive(state):
        time.sleep(0.02)
    if alive(state):
        _kill_group(state.pid, signal.SIGKILL)
        while alive(state):
            time.sleep(0.02)


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def nginx_test() -> None:
    """What nginx.service's ExecStartPre/ExecReload check: the configuration."""
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    if nginx is None:
        warn("nginx is not installed on this machine: configuration not checked")
        return
    result = subprocess.run([nginx, "-t", "-q"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolExit(
            1,
            result.stderr.strip()
            + "\nJob for nginx.service failed because the control process exited with error code.",
        )


PROGRAMS = {
    "web": "mastodon-standin-web",
    "streaming": "mastodon-standin-streaming",
    "worker": "mastodon-standin-worker",
}


def start_process(unit: Unit) -> State:
    kind = kind_of(unit)
    if kind in PROGRAMS:
        return spawn(unit, PROGRAMS[kind])
    if kind == "nginx":
        nginx_test()
    if kind == "oneshot" and unit.get("Service", "RemainAfterExit") not in ("yes", "true", "1"):
        return State(since=time.time())
    sub = "exited" if kind == "oneshot" else "running"
    return State("active", sub, since=time.time())


def reload_process(unit: Unit, state: State) -> None:
    kind = kind_of(unit)
    if kind == "nginx":
        nginx_test()
    elif state.pid and alive(state):
        # What ExecReload=/bin/kill -SIGUSR1 $MAINPID does to puma.
        os.kill(state.pid, signal.SIGUSR1)
