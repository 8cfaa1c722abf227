"""rbenv, ruby-build, ruby and gem, as far as Mastodon's guide uses them.

Ruby versions "installed" by ``rbenv install`` are folders under
``$RBENV_ROOT/versions`` (default ~/.rbenv), so a test sees what a playbook
installed, and every Ruby tool fails like rbenv's shims when the
checkout's .ruby-version is not installed: that is what happens on a real
host when an upgrade forgets ``rbenv install``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import checkout
from .common import ToolExit, say

BUNDLER_VERSION = "2.6.9"


def home() -> Path:
    return Path(os.environ.get("HOME") or os.path.expanduser("~"))


def rbenv_root() -> Path:
    return Path(os.environ.get("RBENV_ROOT") or home() / ".rbenv")


def selected_version() -> tuple[str, str]:
    """(version, origin) as rbenv picks it: env, .ruby-version, global file."""
    if os.environ.get("RBENV_VERSION"):
        return os.environ["RBENV_VERSION"], "RBENV_VERSION environment variable"
    local = checkout.ruby_version_file(os.getcwd())
    if local is not None:
        return local.read_text().strip(), str(local)
    global_file = rbenv_root() / "version"
    if global_file.is_file():
        return global_file.read_text().strip(), str(global_file)
    return "system", str(global_file)


def installed_versions() -> list[str]:
    versions = rbenv_root() / "versions"
    return sorted(p.name for p in versions.iterdir()) if versions.is_dir() else []


def require_ruby() -> str:
    """The selected Ruby, or rbenv's error when it is not installed."""
    version, origin = selected_version()
    if version != "system" and version not in installed_versions():
        raise ToolExit(1, f"rbenv: version `{version}' is not installed (set by {origin})")
    return version


# -- rbenv -------------------------------------------------------------------


def rbenv_install(args: list[str]) -> int:
    skip_existing = any(a in ("-s", "--skip-existing") for a in args)
    names = [a for a in args if not a.startswith("-")]
    version = names[0] if names else selected_version()[0]
    if version == "system":
        raise ToolExit(1, "rbenv-install: no version given and no .ruby-version found")
    prefix = rbenv_root() / "versions" / version
    if prefix.exists():
        if skip_existing:
            return 0
        # Real rbenv asks "continue with installation? (y/N)"; with no
        # terminal the answer is no.
        raise ToolExit(1, f"rbenv: {prefix} already exists")
    build(version, prefix)
    say(f"==> Installed ruby-{version} to {prefix}")
    return 0


def build(version: str, prefix: Path) -> None:
    (prefix / "bin").mkdir(parents=True)
    options = os.environ.get("RUBY_CONFIGURE_OPTS", "")
    (prefix / "standin-build.txt").write_text(f"version={version}\nRUBY_CONFIGURE_OPTS={options}\n")


def rbenv(argv: list[str]) -> int:
    args = argv[1:]
    command = args[0] if args else "help"
    rest = args[1:]
    if command == "install":
        return rbenv_install(rest)
    if command == "version":
        version, origin = selected_version()
        if version != "system" and version not in installed_versions():
            raise ToolExit(1, f"rbenv: version `{version}' is not installed (set by {origin})")
        say(f"{version} (set by {origin})")
    elif command == "versions":
        current = selected_version()[0]
        for version in installed_versions():
            say(f"{'*' if version == current else ' '} {version}")
    elif command in ("global", "local"):
        target = rbenv_root() / "version" if command == "global" else Path(".ruby-version")
        if rest:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rest[0] + "\n")
        else:
            say(target.read_text().strip() if target.exists() else "system")
    elif command == "init":
        say(f'export PATH="{rbenv_root()}/shims:${{PATH}}"\nexport RBENV_SHELL=bash')
    elif command == "root":
        say(str(rbenv_root()))
    elif command in ("--version", "-v"):
        say("rbenv 1.3.2")
    elif command == "uninstall":
        shutil.rmtree(rbenv_root() / "versions" / rest[-1], ignore_errors=True)
    # rehash, shell, which ... have nothing to emulate: recorded, succeed.
    return 0


def ruby_build(argv: list[str]) -> int:
    args = argv[1:]
    if "--version" in args:
        say("ruby-build 20250610")
    elif "--definitions" in args or "-l" in args:
        say("3.3.9\n3.4.5\n3.4.7\n4.0.0\n4.0.1")
    elif len(args) >= 2:
        build(args[-2], Path(args[-1]))
    return 0


def ruby(argv: list[str]) -> int:
    version = require_ruby()
    if any(a in ("-v", "--version") for a in argv[1:]):
        say(f"ruby {version} (stand-in) [x86_64-linux]")
    return 0


def gem(argv: list[str]) -> int:
    require_ruby()
    args = argv[1:]
    if args[:1] == ["install"]:
        for name in (a for a in args[1:] if not a.startswith("-")):
            say(
                f"Successfully installed {name}-{BUNDLER_VERSION if name == 'bundler' else '1.0.0'}"
            )
        say("1 gem installed")
    elif args[:1] in (["--version"], ["-v"]):
        say("3.6.9")
    return 0
