"""Reading the PLAY RECAP of a plain `ansible-playbook` run's output."""

from __future__ import annotations

import re

from controlplane.problems import InvalidInput

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADER = re.compile(r"^PLAY RECAP \**\s*$")
_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:[a-z]+=\d+\s*)+)$")
COUNTS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


def parse_recap(output: str) -> list[dict[str, int | str]]:
    """Each host's counts from the last PLAY RECAP in `output` (colours
    allowed); InvalidInput when there is none."""
    lines = [_ANSI.sub("", line).rstrip() for line in output.splitlines()]
    starts = [i for i, line in enumerate(lines) if _HEADER.match(line)]
    if not starts:
        raise InvalidInput("the log has no PLAY RECAP: give the output of a finished run")
    hosts: list[dict[str, int | str]] = []
    for line in lines[starts[-1] + 1 :]:
        match = _LINE.match(line.strip())
        if match is None:
            if hosts or line.strip():
                break
            continue
        counts = dict(item.split("=") for item in match["counts"].split())
        hosts.append({"host": match["host"], **{k: int(counts.get(k, 0)) for k in COUNTS}})
    if not hosts:
        raise InvalidInput("the PLAY RECAP lists no host")
    return hosts


def status_of(hosts: list[dict[str, int | str]]) -> str:
    bad = any(int(h["failed"]) or int(h["unreachable"]) for h in hosts)
    return "failed" if bad else "succeeded"
