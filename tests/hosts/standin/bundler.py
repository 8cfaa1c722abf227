"""bundle, as Mastodon's guide uses it: config, install, check, exec.

``bundle install`` leaves a marker holding the digest of Gemfile.lock, so
``bundle exec``, ``bin/rails`` and ``bin/tootctl`` fail like bundler does
when the gems of the checked-out release were never installed (an upgrade
that forgot ``bundle install``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import checkout
from .common import ToolExit, say, warn
from .rails import run_rails
from .rbenv import BUNDLER_VERSION, home, require_ruby


def gemfile_dir() -> Path:
    """Where bundler finds the Gemfile (BUNDLE_GEMFILE or upwards from here)."""
    if os.environ.get("BUNDLE_GEMFILE"):
        return Path(os.environ["BUNDLE_GEMFILE"]).resolve().parent
    cwd = Path.cwd()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "Gemfile").is_file():
            return candidate
    raise ToolExit(10, "Could not locate Gemfile or .bundle/ directory")


def read_config(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    pairs = re.findall(r'^(BUNDLE_\w+):\s*"?(.*?)"?\s*$', path.read_text(), re.MULTILINE)
    return dict(pairs)


def write_config(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + "".join(f'{k}: "{v}"\n' for k, v in sorted(values.items())))


def config_key(name: str) -> str:
    return "BUNDLE_" + name.upper().replace("-", "_").replace(".", "__")


def effective_config(app: Path | None) -> dict[str, str]:
    """Bundler's precedence: the app's .bundle/config, then env, then global."""
    values = read_config(home() / ".bundle" / "config")
    values.update({k: v for k, v in os.environ.items() if k.startswith("BUNDLE_")})
    if app is not None:
        values.update(read_config(app / ".bundle" / "config"))
    return values


def bundle_config(args: list[str]) -> int:
    local = "--local" in args
    words = [a for a in args if a not in ("--local", "--global")]
    if words[:1] in (["set"], ["get"], ["unset"], ["list"]):
        action, words = words[0], words[1:]
    else:
        action = "set" if len(words) >= 2 else ("get" if words else "list")
    app = gemfile_dir() if local else None
    path = (app / ".bundle" / "config") if app else home() / ".bundle" / "config"
    values = read_config(path)
    if action == "set":
        value = " ".join(words[1:])
        if words[0] in ("without", "with"):
            value = ":".join(value.replace(":", " ").split())
        values[config_key(words[0])] = value
        write_config(path, values)
    elif action == "unset":
        values.pop(config_key(words[0]), None)
        write_config(path, values)
    elif action == "get":
        value = effective_config(_app_or_none()).get(config_key(words[0]))
        say(f"Settings for `{words[0]}` in order of priority. The top value will be used")
        say(
            f"Set for the current user ({path}): {value!r}"
            if value
            else "You have not configured a value"
        )
    else:
        for key, value in sorted(effective_config(_app_or_none()).items()):
            say(f"{key.removeprefix('BUNDLE_').lower()}\nSet: {value!r}")
    return 0


def _app_or_none() -> Path | None:
    try:
        return gemfile_dir()
    except ToolExit:
        return None


def bundle_install(app: Path) -> int:
    config = effective_config(app)
    deployment = config.get("BUNDLE_DEPLOYMENT") == "true"
    if deployment and not (app / "Gemfile.lock").is_file():
        raise ToolExit(16, "The deployment setting requires a Gemfile.lock.")
    path = config.get("BUNDLE_PATH") or ("vendor/bundle" if deployment else "")
    if path:
        (app / path / "ruby").mkdir(parents=True, exist_ok=True)
    checkout.mark_gems_installed(app)
    say("Bundle complete! 1 Gemfile dependency, 1 gem now installed.")
    if config.get("BUNDLE_WITHOUT"):
        say(
            f"Gems in the groups '{config['BUNDLE_WITHOUT'].replace(':', ' ')}' were not installed."
        )
    if path:
        say(f"Bundled gems are installed into `./{path}`")
    return 0


def bundle_check(app: Path) -> int:
    if checkout.gems_installed(app):
        say("The Gemfile's dependencies are satisfied")
        return 0
    raise ToolExit(
        1,
        "Bundler can't satisfy your Gemfile's dependencies.\n"
        "Install missing gems with `bundle install`.",
    )


def bundle_exec(args: list[str]) -> int:
    if not args:
        raise ToolExit(1, "bundler: exec needs a command to run")
    command = os.path.basename(args[0])
    if command in ("rails", "rake"):
        return run_rails(args[1:], command)
    if command == "tootctl":
        from .tootctl import tootctl

        return tootctl(args)
    warn(f"bundle exec {command}: nothing to emulate (recorded)")
    return 0


def bundle(argv: list[str]) -> int:
    args = argv[1:]
    command = args[0] if args else "install"
    if command in ("--version", "version", "-v"):
        say(f"Bundler version {BUNDLER_VERSION}")
        return 0
    require_ruby()
    if command == "config":
        return bundle_config(args[1:])
    if command == "exec":
        checkout.require_gems(gemfile_dir())
        return bundle_exec(args[1:])
    if command == "install":
        return bundle_install(gemfile_dir())
    if command == "check":
        return bundle_check(gemfile_dir())
    return 0
