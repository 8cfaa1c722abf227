"""node, corepack and yarn, as far as Mastodon's guide uses them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .common import ToolExit, say

NODE_VERSION = os.environ.get("HERD_STANDIN_NODE_VERSION", "v24.11.1")


def node(argv: list[str]) -> int:
    if any(a in ("-v", "--version") for a in argv[1:]):
        say(NODE_VERSION)
    return 0


def corepack(argv: list[str]) -> int:
    if argv[1:2] == ["--version"]:
        say("0.34.0")
    return 0


def package_dir() -> Path:
    cwd = Path.cwd()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "package.json").is_file():
            return candidate
    raise ToolExit(
        1,
        f"Usage Error: The nearest package directory ({cwd}) doesn't seem to be part of "
        "the project declared in any package.json.",
    )


def pinned_yarn(project: Path) -> str:
    manager = json.loads((project / "package.json").read_text()).get("packageManager", "")
    return manager.split("@", 1)[1].split("+")[0] if manager.startswith("yarn@") else "1.22.22"


def yarn_install(project: Path, args: list[str]) -> int:
    immutable = "--immutable" in args or "--frozen-lockfile" in args
    if immutable and not (project / "yarn.lock").is_file():
        raise ToolExit(
            1,
            "YN0028: The lockfile would have been created by this install, "
            "which is explicitly forbidden.",
        )
    modules = project / "node_modules"
    modules.mkdir(exist_ok=True)
    (modules / ".yarn-state.yml").write_text(
        "# Stand-in: written by yarn install\n__metadata:\n  version: 1\n"
    )
    say("➤ YN0000: · Done")
    return 0


def yarn(argv: list[str]) -> int:
    args = argv[1:]
    if args[:1] in (["--version"], ["-v"]):
        say(pinned_yarn(package_dir()))
        return 0
    if not args or args[0] == "install":
        return yarn_install(package_dir(), args[1:])
    package_dir()
    return 0
