"""The read-only verbs of the fake systemctl: show, status, is-*, list-*, cat."""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import services
from .common import ToolExit, say
from .enablement import enabled_state
from .services import State, current_state
from .units import all_unit_files, load

if TYPE_CHECKING:
    from .systemctl import Options


def properties(name: str) -> dict[str, str]:
    unit = load(name)
    state = current_state(unit) if unit.found else State()
    load_state = "masked" if unit.masked else ("loaded" if unit.found else "not-found")
    props = {
        "Type": unit.get("Service", "Type", "simple"),
        "Restart": unit.get("Service", "Restart", "no"),
        "MainPID": str(state.pid),
        "ExecMainPID": str(state.pid),
        "Id": name,
        "Names": name,
        "Description": unit.get("Unit", "Description", name),
        "LoadState": load_state,
        "ActiveState": state.active,
        "SubState": state.sub,
        "FragmentPath": unit.fragment if unit.found and not unit.masked else "",
        "DropInPaths": " ".join(unit.dropins),
        "UnitFileState": enabled_state(name),
        "UnitFilePreset": "enabled" if unit.found else "",
        "User": unit.get("Service", "User"),
        "WorkingDirectory": unit.get("Service", "WorkingDirectory"),
        "Environment": " ".join(unit.sections.get("Service", {}).get("Environment", [])),
        "Wants": " ".join(unit.words("Unit", "Wants")),
        "PartOf": " ".join(unit.words("Unit", "PartOf")),
        "NeedDaemonReload": "yes" if unit.found and unit.changed_on_disk() else "no",
        "CanReload": "yes" if unit.get("Service", "ExecReload") else "no",
        "Result": state.result,
        "ActiveEnterTimestamp": _timestamp(state.since) if state.active == "active" else "",
        "ExecMainStartTimestamp": _timestamp(state.since) if state.pid else "",
    }
    if not unit.found:
        props["LoadError"] = f'org.freedesktop.systemd1.NoSuchUnit "Unit {name} not found."'
    return props


def _timestamp(when: float) -> str:
    return time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(when)) if when else ""


def show(names: list[str], wanted: list[str], value_only: bool) -> None:
    for index, name in enumerate(names):
        if index:
            say()
        for key, value in properties(name).items():
            if not wanted or key in wanted:
                say(value if value_only else f"{key}={value}")


def status(name: str) -> int:
    props = properties(name)
    if props["LoadState"] == "not-found":
        raise ToolExit(4, f"Unit {name} could not be found.")
    say(f"● {name} - {props['Description']}")
    say(f"     Loaded: {props['LoadState']} ({props['FragmentPath']}; {props['UnitFileState']})")
    say(
        f"     Active: {props['ActiveState']} ({props['SubState']}) {props['ActiveEnterTimestamp']}"
    )
    if props["MainPID"] != "0":
        say(f"   Main PID: {props['MainPID']}")
    log = services.LOG_DIR / f"{name}.log"
    if log.is_file():
        say()
        for line in log.read_text(errors="replace").splitlines()[-10:]:
            say(line)
    return 0 if props["ActiveState"] == "active" else 3


def matching(names: list[str], patterns: list[str], types: list[str]) -> list[str]:
    suffixes = tuple(f".{t}" for t in types) or ("",)
    return [
        name
        for name in names
        if name.endswith(suffixes) and any(fnmatch.fnmatch(name, p) for p in patterns or ["*"])
    ]


def list_units(patterns: list[str], types: list[str], everything: bool) -> None:
    """Units, one per line: UNIT LOAD ACTIVE SUB DESCRIPTION (as with --plain).

    With --all, every unit file is listed, the never-started ones as
    inactive without reading them: service_facts would otherwise ask
    ``systemctl show`` about each of them, one process per unit file.
    """
    files = all_unit_files() if everything else {}
    # ssh.service runs from the start: it is the harness's sshd.
    known = set(services.known_units()) | {"ssh.service", "sshd.service"}.intersection(files)
    for name in matching(sorted(known | set(files)), patterns, types):
        if name in known:
            p = properties(name)
            say(f"{name} {p['LoadState']} {p['ActiveState']} {p['SubState']} {p['Description']}")
        else:
            masked = Path(files[name]).resolve() == Path("/dev/null")
            say(f"{name} {'masked' if masked else 'loaded'} inactive dead {name}")


def list_unit_files(patterns: list[str], types: list[str]) -> int:
    shown = matching(list(all_unit_files()), patterns, types)
    say("UNIT FILE STATE PRESET")
    for name in shown:
        say(f"{name} {enabled_state(name) or 'static'} enabled")
    say(f"\n{len(shown)} unit files listed.")
    return 0 if shown else 1


def run_query(verb: str, names: list[str], options: Options) -> int:
    if verb == "is-active":
        states = [properties(n)["ActiveState"] for n in names]
        for state in states:
            say(state)
        return 0 if all(s == "active" for s in states) else 3
    if verb == "is-failed":
        states = [properties(n)["ActiveState"] for n in names]
        for state in states:
            say(state)
        return 0 if any(s == "failed" for s in states) else 1
    if verb == "is-enabled":
        states = [enabled_state(n) for n in names]
        if "" in states:
            missing = names[states.index("")]
            raise ToolExit(
                1, f"Failed to get unit file state for {missing}: No such file or directory"
            )
        for state in states:
            say(state)
        return 0 if all(s in ("enabled", "static", "indirect", "alias") for s in states) else 1
    if verb == "show":
        show(names, options.properties, options.value_only)
        return 0
    if verb == "status":
        return max((status(n) for n in names), default=0)
    if verb == "cat":
        for name in names:
            unit = load(name)
            for path in [unit.fragment, *unit.dropins]:
                say(f"# {path}\n{Path(path or '').read_text()}")
        return 0
    if verb == "list-units":
        list_units(names, options.types, options.all)
        return 0
    if verb == "list-unit-files":
        return list_unit_files(names, options.types)
    if verb == "is-system-running":
        say("running")
        return 0
    if verb == "--version":
        say("systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT +SELINUX (Herd test stand-in)")
        return 0
    raise ToolExit(1, f"Unknown command verb '{verb}'.")
