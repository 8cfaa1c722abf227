"""A ``systemctl`` good enough for Ansible's systemd_service and service_facts.

Verbs: start, stop, restart, reload, try-restart, reload-or-restart,
enable, disable, mask, unmask, is-active, is-enabled, is-failed, show,
status, cat, list-units, list-unit-files, daemon-reload, daemon-reexec,
reset-failed, kill, is-system-running, --version. Enabling works as
systemd does it, with symlinks in /etc/systemd/system/<target>.wants, so a
test can see them in the host's /etc. Dependencies honoured: Wants= and
Requires= on start, PartOf= on stop and restart, ReloadPropagatedFrom= on
reload (what ties mastodon-streaming to its @PORT instances).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import services
from .common import ToolExit, say, warn
from .enablement import disable, enable, mask, unmask
from .queries import run_query
from .services import State, current_state, read_state, write_state
from .units import RUN_DIR, Unit, daemon_reload, load, normalize, split_instance

CHANGING = frozenset(
    {
        "start",
        "stop",
        "restart",
        "reload",
        "try-restart",
        "reload-or-restart",
        "enable",
        "disable",
        "mask",
        "unmask",
        "daemon-reload",
        "daemon-reexec",
        "reset-failed",
        "kill",
    }
)


@contextmanager
def locked() -> Iterator[None]:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(RUN_DIR / ".lock", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def loaded(name: str, verb: str) -> Unit:
    unit = load(name)
    _template, instance = split_instance(name)
    if instance == "":
        raise ToolExit(
            1, f"Failed to {verb} {name}: Unit name {name} is missing the instance name."
        )
    if not unit.found:
        raise ToolExit(5, f"Failed to {verb} {name}: Unit {name} not found.")
    if unit.masked:
        raise ToolExit(1, f"Failed to {verb} {name}: Unit {name} is masked.")
    if unit.changed_on_disk():
        warn(
            f"Warning: The unit file, source configuration file or drop-ins of {name} changed "
            "on disk. Run 'systemctl daemon-reload' to reload units."
        )
    return unit


# -- start / stop / restart / reload ------------------------------------------------


def start(name: str, seen: set[str] | None = None) -> None:
    seen = seen if seen is not None else set()
    if name in seen:
        return
    seen.add(name)
    unit = loaded(name, "start")
    for dependency in unit.words("Unit", "Requires") + unit.words("Unit", "Wants"):
        start(normalize(dependency), seen)
    if current_state(unit).active == "active":
        return
    write_state(name, services.start_process(unit))


def part_of(name: str) -> list[str]:
    """Active units that declare PartOf=name."""
    return [
        other
        for other in services.known_units()
        if other != name
        and read_state(other).active == "active"
        and name in load(other).words("Unit", "PartOf")
    ]


def stop(name: str) -> None:
    unit = load(name)
    if not unit.found and read_state(name).since == 0:
        raise ToolExit(5, f"Failed to stop {name}: Unit {name} not loaded.")
    for dependent in part_of(name):
        stop(dependent)
    services.terminate(read_state(name))
    write_state(name, State(since=time.time()))


def restart(name: str) -> None:
    loaded(name, "restart")
    dependents = part_of(name)
    for dependent in dependents:
        stop(dependent)
    stop(name)
    start(name)
    for dependent in dependents:
        start(dependent)


def reload(name: str) -> None:
    unit = loaded(name, "reload")
    state = current_state(unit)
    if state.active != "active":
        raise ToolExit(1, f"{name} is not active, cannot reload.")
    if not unit.get("Service", "ExecReload") and services.kind_of(unit) != "nginx":
        raise ToolExit(
            1, f"Failed to reload {name}: Job type reload is not applicable for unit {name}."
        )
    services.reload_process(unit, state)
    for other in services.known_units():
        if name in load(other).words("Unit", "ReloadPropagatedFrom"):
            other_unit = load(other)
            if current_state(other_unit).active == "active" and other_unit.get(
                "Service", "ExecReload"
            ):
                services.reload_process(other_unit, current_state(other_unit))


def try_restart(name: str) -> None:
    if read_state(name).active == "active":
        restart(name)


def reload_or_restart(name: str) -> None:
    unit = loaded(name, "reload")
    if current_state(unit).active == "active" and unit.get("Service", "ExecReload"):
        reload(name)
    else:
        restart(name)


# -- command line ----------------------------------------------------------------------


@dataclass
class Options:
    verb: str = ""
    names: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    all: bool = False
    value_only: bool = False
    now: bool = False


# Options followed by a value that is not a unit name.
VALUE_OPTIONS = frozenset(
    {"-s", "--signal", "-o", "--output", "-n", "--lines", "-H", "--host", "-M", "--machine"}
    | {"--state", "--root", "--kill-whom", "--job-mode"}
)


def parse(args: list[str]) -> Options:
    options = Options()
    items = iter(args)
    for arg in items:
        if arg in ("-p", "--property"):
            options.properties += next(items, "").split(",")
        elif arg.startswith("--property="):
            options.properties += arg.split("=", 1)[1].split(",")
        elif arg in ("-t", "--type"):
            options.types += next(items, "").split(",")
        elif arg.startswith("--type="):
            options.types += arg.split("=", 1)[1].split(",")
        elif arg in VALUE_OPTIONS:
            next(items, None)
        elif arg in ("-a", "--all"):
            options.all = True
        elif arg == "--value":
            options.value_only = True
        elif arg == "--now":
            options.now = True
        elif arg == "--version":
            options.verb = "--version"
        elif arg.startswith("-"):
            continue  # --no-pager, --no-block, -q, --system, -l, --all ...
        elif not options.verb:
            options.verb = arg
        else:
            options.names.append(normalize(arg))
    return options


ACTIONS: dict[str, Callable[[str], None]] = {
    "start": start,
    "stop": stop,
    "restart": restart,
    "reload": reload,
    "try-restart": try_restart,
    "reload-or-restart": reload_or_restart,
    "enable": enable,
    "disable": disable,
    "mask": mask,
    "unmask": unmask,
}


def run_change(verb: str, names: list[str], now: bool) -> int:
    if os.geteuid() != 0:
        what = "reload daemon" if verb.startswith("daemon") else f"{verb} {' '.join(names)}"
        raise ToolExit(1, f"Failed to {what}: Interactive authentication required.")
    with locked():
        if verb == "daemon-reload":
            daemon_reload()
        elif verb == "reset-failed":
            for name in names or services.known_units():
                if read_state(name).active == "failed":
                    write_state(name, State())
        elif verb == "kill":
            for name in names:
                services.terminate(read_state(name))
        else:
            for name in names:
                ACTIONS[verb](name)
                if now and verb in ("enable", "disable"):
                    (start if verb == "enable" else stop)(name)
    return 0


def systemctl(argv: list[str]) -> int:
    options = parse(argv[1:])
    verb, names = options.verb or "list-units", options.names
    if verb in CHANGING:
        if verb not in ("daemon-reload", "daemon-reexec", "reset-failed") and not names:
            raise ToolExit(1, f"Too few arguments for '{verb}'.")
        return run_change(verb, names, options.now)
    return run_query(verb, names, options)


def journalctl(argv: list[str]) -> int:
    units, lines = [], 0
    items = iter(argv[1:])
    for arg in items:
        if arg in ("-u", "--unit"):
            units.append(normalize(next(items, "")))
        elif arg.startswith("--unit="):
            units.append(normalize(arg.split("=", 1)[1]))
        elif arg in ("-n", "--lines"):
            lines = int(next(items, "10"))
        elif arg.startswith("--lines="):
            lines = int(arg.split("=", 1)[1])
    logs = (
        [services.LOG_DIR / f"{u}.log" for u in units]
        if units
        else sorted(services.LOG_DIR.glob("*.log"))
    )
    text = [
        line
        for log in logs
        if log.is_file()
        for line in log.read_text(errors="replace").splitlines()
    ]
    for line in text[-lines:] if lines else text:
        say(line)
    return 0
