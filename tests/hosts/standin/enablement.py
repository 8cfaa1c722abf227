"""Enabling units as systemd does it: symlinks in /etc/systemd/system/<target>.wants.

The links land in the host's own /etc (the overlay's upper folder), where a
test can see them, and they survive a reboot of the test host.
"""

from __future__ import annotations

import os
from pathlib import Path

from .common import ToolExit, warn
from .units import Unit, load, split_instance

ETC = Path("/etc/systemd/system")


def wanted_links(unit: Unit) -> list[Path]:
    targets = unit.words("Install", "WantedBy") + unit.words("Install", "RequiredBy")
    suffix = dict.fromkeys(unit.words("Install", "WantedBy"), ".wants")
    suffix.update(dict.fromkeys(unit.words("Install", "RequiredBy"), ".requires"))
    return [ETC / f"{target}{suffix[target]}" / unit.name for target in targets]


def enabled_state(name: str) -> str:
    unit = load(name)
    if unit.masked:
        return "masked"
    if not unit.found:
        return ""
    if any(p.is_symlink() for p in ETC.glob(f"*.wants/{name}")) or any(
        p.is_symlink() for p in ETC.glob(f"*.requires/{name}")
    ):
        return "enabled"
    if not unit.sections.get("Install"):
        return "static"
    _template, instance = split_instance(name)
    return "indirect" if instance and not unit.name.endswith("@.service") else "disabled"


def enable(name: str) -> None:
    unit = load(name)
    if not unit.found:
        raise ToolExit(1, f"Failed to enable unit: Unit file {name} does not exist.")
    links = wanted_links(unit)
    if not links:
        warn(
            f"The unit files have no installation config (WantedBy=, RequiredBy=, ...) "
            f"for {name}; enabling them has no effect."
        )
    for link in links:
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(unit.fragment or "")
            warn(f"Created symlink {link} → {unit.fragment}.")


def disable(name: str) -> None:
    for link in [*ETC.glob(f"*.wants/{name}"), *ETC.glob(f"*.requires/{name}")]:
        link.unlink()
        warn(f'Removed "{link}".')


def mask(name: str) -> None:
    link = ETC / name
    if link.exists() and not link.is_symlink():
        raise ToolExit(1, f"Failed to mask unit: File {link} already exists.")
    if not link.is_symlink():
        link.symlink_to("/dev/null")
        warn(f"Created symlink {link} → /dev/null.")


def unmask(name: str) -> None:
    link = ETC / name
    if link.is_symlink() and os.readlink(link) == "/dev/null":
        link.unlink()
        warn(f'Removed "{link}".')
