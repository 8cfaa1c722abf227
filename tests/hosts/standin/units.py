"""systemd unit files: finding, parsing and "loading" them like systemd does.

systemd reads a unit file once and keeps it until ``daemon-reload``; a unit
file changed on disk without one goes on running with the old definition
(and ``systemctl`` warns). The stand-in keeps a snapshot of each unit as
first loaded under /run/standin/loaded, so a playbook that forgets
``daemon_reload`` after changing a unit fails its test as it would fail in
production.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .checkout import parse_dotenv

UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
)
RUN_DIR = Path("/run/standin")
LOADED_DIR = RUN_DIR / "loaded"
SUFFIXES = (
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".mount",
    ".path",
    ".slice",
    ".scope",
    ".device",
    ".swap",
    ".automount",
)

Sections = dict[str, dict[str, list[str]]]


def normalize(name: str) -> str:
    return name if name.endswith(SUFFIXES) else f"{name}.service"


def split_instance(name: str) -> tuple[str, str | None]:
    """("mastodon-streaming@.service", "4000") for "mastodon-streaming@4000.service"."""
    stem, dot, suffix = name.rpartition(".")
    if "@" not in stem:
        return name, None
    prefix, _, instance = stem.partition("@")
    return f"{prefix}@{dot}{suffix}", instance


@dataclass
class Unit:
    name: str
    fragment: str | None
    dropins: list[str] = field(default_factory=list)
    sections: Sections = field(default_factory=dict)
    mtimes: dict[str, float] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.fragment is not None

    @property
    def masked(self) -> bool:
        return self.fragment == "/dev/null"

    def get(self, section: str, key: str, default: str = "") -> str:
        values = self.sections.get(section, {}).get(key, [])
        return values[-1] if values else default

    def words(self, section: str, key: str) -> list[str]:
        """A list setting (Wants=, PartOf= ...): every value, split on spaces."""
        return [w for v in self.sections.get(section, {}).get(key, []) for w in v.split()]

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for path in self.sections.get("Service", {}).get("EnvironmentFile", []):
            optional = path.startswith("-")
            file = Path(path.lstrip("-"))
            if file.is_file():
                env.update(parse_dotenv(file.read_text()))
            elif not optional:
                raise FileNotFoundError(f"Failed to load environment files: {file}")
        for value in self.sections.get("Service", {}).get("Environment", []):
            for assignment in shlex.split(value):
                key, _, val = assignment.partition("=")
                env[key] = val
        return env

    def changed_on_disk(self) -> bool:
        current = _mtimes(self.fragment, _dropins(self.name))
        return current != self.mtimes


def find_fragment(name: str) -> str | None:
    template, instance = split_instance(name)
    for directory in UNIT_DIRS:
        for candidate in (name, template) if instance else (name,):
            path = directory / candidate
            if path.is_symlink() and os.readlink(path) == "/dev/null":
                return "/dev/null"
            if path.is_file():
                return str(path)
    return None


def _dropins(name: str) -> list[str]:
    template, instance = split_instance(name)
    names = [template, name] if instance else [name]
    found = []
    for directory in reversed(UNIT_DIRS):
        for unit_name in names:
            folder = directory / f"{unit_name}.d"
            if folder.is_dir():
                found += [str(p) for p in sorted(folder.glob("*.conf"))]
    return found


def _mtimes(fragment: str | None, dropins: list[str]) -> dict[str, float]:
    paths = [p for p in [fragment, *dropins] if p and p != "/dev/null"]
    return {p: os.stat(p).st_mtime for p in paths if os.path.exists(p)}


def specifiers(text: str, name: str) -> str:
    stem = name.rpartition(".")[0]
    prefix, _, instance = stem.partition("@")
    table = {"i": instance, "I": instance, "n": name, "N": stem, "p": prefix, "%": "%"}
    out, i = [], 0
    while i < len(text):
        if text[i] == "%" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse(text: str, name: str, sections: Sections) -> None:
    """Add one unit file's settings; an empty assignment resets a list."""
    section = ""
    lines = text.replace("\\\n", " ").splitlines()
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            sections.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        values = sections.setdefault(section, {}).setdefault(key.strip(), [])
        value = specifiers(value.strip(), name)
        if value:
            values.append(value)
        else:
            values.clear()


def read_unit(name: str) -> Unit:
    fragment = find_fragment(name)
    dropins = _dropins(name) if fragment and fragment != "/dev/null" else []
    unit = Unit(name=name, fragment=fragment, dropins=dropins, mtimes=_mtimes(fragment, dropins))
    for path in [fragment, *dropins] if fragment and fragment != "/dev/null" else []:
        parse(Path(path).read_text(), name, unit.sections)
    return unit


def load(name: str) -> Unit:
    """The unit as systemd holds it: the snapshot, or read now and kept."""
    snapshot = LOADED_DIR / name
    if snapshot.is_file():
        data = json.loads(snapshot.read_text())
        return Unit(**data)
    unit = read_unit(name)
    if unit.found and not unit.masked and os.geteuid() == 0:
        LOADED_DIR.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(json.dumps(unit.__dict__))
    return unit


def daemon_reload() -> None:
    if LOADED_DIR.is_dir():
        for snapshot in LOADED_DIR.iterdir():
            snapshot.unlink()


def all_unit_files() -> dict[str, str]:
    """Every unit file name and its path, first directory wins."""
    found: dict[str, str] = {}
    for directory in UNIT_DIRS:
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.name.endswith(SUFFIXES) and path.name not in found:
                    found[path.name] = str(path)
    return found
