"""Entry point of every stand-in executable: record, inject failures, dispatch."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from .common import ToolExit, failure_for, record, warn

Tool = Callable[[list[str]], int]


# Tool name → (module, function). Only that module is imported: every
# stand-in call is a new process, and Ansible makes many of them.
TOOLS: dict[str, tuple[str, str]] = {
    "bundle": ("bundler", "bundle"),
    "gem": ("rbenv", "gem"),
    "ruby": ("rbenv", "ruby"),
    "rbenv": ("rbenv", "rbenv"),
    "ruby-build": ("rbenv", "ruby_build"),
    "rails": ("rails", "main"),
    "tootctl": ("tootctl", "tootctl"),
    "yarn": ("node", "yarn"),
    "corepack": ("node", "corepack"),
    "node": ("node", "node"),
    "systemctl": ("systemctl", "systemctl"),
    "journalctl": ("systemctl", "journalctl"),
    "mastodon-standin-web": ("web", "main"),
    "mastodon-standin-streaming": ("daemons", "streaming"),
    "mastodon-standin-worker": ("daemons", "worker"),
}


def tool_function(tool: str) -> Tool:
    module_name, function = TOOLS[tool]
    module = importlib.import_module(f".{module_name}", __package__)
    return getattr(module, function)


def main(tool: str, argv: list[str]) -> int:
    command = " ".join([tool, *argv[1:]])
    failing = failure_for(command, os.environ)
    record(tool, argv, {"injected_failure": failing} if failing else None)
    if failing:
        warn(f"{tool}: failing on purpose (/opt/standin/fail: {failing!r})")
        return 1
    try:
        return tool_function(tool)(argv) or 0
    except ToolExit as exc:
        if exc.message:
            warn(exc.message)
        return exc.status
    except BrokenPipeError:
        return 141


if __name__ == "__main__":  # python -m standin.cli TOOL ARGS...
    sys.exit(main(sys.argv[1], sys.argv[1:]))
