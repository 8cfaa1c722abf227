"""Reading a Mastodon checkout the way Mastodon itself would.

The version comes from ``lib/mastodon/version.rb`` (plus the
MASTODON_VERSION_PRERELEASE / MASTODON_VERSION_METADATA variables), the
configuration from the process environment and then ``.env.<RAILS_ENV>``
(dotenv: a variable already set wins over the file).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .common import ToolExit

VERSION_FILE = "lib/mastodon/version.rb"


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: str
    metadata: str
    api_version: int

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.metadata:
            text += f"+{self.metadata}"
        return text


def find_root(start: str | Path) -> Path | None:
    """The checkout that holds ``start`` (Rails.root), if any."""
    path = Path(start).resolve()
    for candidate in (path, *path.parents):
        if (candidate / VERSION_FILE).is_file():
            return candidate
    return None


def require_root(start: str | Path, tool: str) -> Path:
    root = find_root(start)
    if root is None:
        raise ToolExit(1, f"{tool}: {start} is not inside a Mastodon checkout (no {VERSION_FILE})")
    return root


def _ruby_method(source: str, name: str) -> str:
    match = re.search(rf"def {name}\s*\n\s*(.+?)\s*\n\s*end", source)
    return match.group(1).strip() if match else ""


def read_version(root: Path, env: Mapping[str, str]) -> Version:
    source = (root / VERSION_FILE).read_text()
    api = re.search(r"mastodon:\s*(\d+)", source)
    return Version(
        major=int(_ruby_method(source, "major") or 0),
        minor=int(_ruby_method(source, "minor") or 0),
        patch=int(_ruby_method(source, "patch") or 0),
        prerelease=env.get("MASTODON_VERSION_PRERELEASE")
        or _ruby_method(source, "default_prerelease").strip("'\""),
        metadata=env.get("MASTODON_VERSION_METADATA", ""),
        api_version=int(api.group(1)) if api else 1,
    )


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=value lines as dotenv reads them: quotes, ``export``, comments."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key.strip()):
            continue
        value = value.strip()
        if value[:1] in ("'", '"'):
            try:
                value = shlex.split(value)[0] if value else ""
            except ValueError:
                value = value.strip("'\"")
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip()] = value
    return values


def rails_env(root: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The environment the Rails app sees: process env over the dotenv files."""
    mode = env.get("RAILS_ENV") or "development"
    merged: dict[str, str] = {}
    for name in (".env", f".env.{mode}", ".env.local", f".env.{mode}.local"):
        path = root / name
        if path.is_file():
            merged.update(parse_dotenv(path.read_text()))
    merged.update(env)
    merged["RAILS_ENV"] = mode
    return merged


ENCRYPTION_KEYS = (
    "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY",
    "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
    "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
)


def boot_problems(env: Mapping[str, str]) -> list[str]:
    """Why the Rails app would refuse to boot with this environment.

    Mirrors Mastodon 4.4+: it aborts without the three Active Record
    encryption keys and with REDIS_NAMESPACE set; Rails refuses production
    without SECRET_KEY_BASE.
    """
    problems = []
    if any(not env.get(key) for key in ENCRYPTION_KEYS):
        problems.append(
            "Mastodon now requires that these variables are set:\n"
            + "".join(f"  - {key}\n" for key in ENCRYPTION_KEYS)
            + "Run `bin/rails db:encryption:init` to generate values and then assign "
            "the environment variables."
        )
    if env.get("REDIS_NAMESPACE"):
        problems.append(
            "ERROR: the REDIS_NAMESPACE environment variable is no longer supported, "
            "and a migration is required."
        )
    if env.get("RAILS_ENV") == "production" and not env.get("SECRET_KEY_BASE"):
        problems.append("Missing `secret_key_base` for 'production' environment")
    return problems


def boot(root: Path, tool: str) -> dict[str, str]:
    """The app's environment, or exit like a Rails app that cannot boot."""
    env = rails_env(root, os.environ)
    problems = boot_problems(env)
    if problems:
        files = f".env.{env['RAILS_ENV']} in {root}"
        raise ToolExit(
            1,
            "\n".join(problems)
            + f"\n({tool} stand-in: RAILS_ENV={env['RAILS_ENV']}, configuration read from {files})",
        )
    return env


def ruby_version_file(start: str | Path) -> Path | None:
    """The .ruby-version rbenv would use from ``start`` (searching upwards)."""
    path = Path(start).resolve()
    for candidate in (path, *path.parents):
        if (candidate / ".ruby-version").is_file():
            return candidate / ".ruby-version"
    return None


def _lock_digest(app: Path) -> str:
    lock = app / "Gemfile.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else ""


def mark_gems_installed(app: Path) -> None:
    marker = app / ".bundle" / "standin-installed"
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(_lock_digest(app) + "\n")


def gems_installed(app: Path) -> bool:
    marker = app / ".bundle" / "standin-installed"
    return marker.is_file() and marker.read_text().strip() == _lock_digest(app)


def require_gems(app: Path) -> None:
    """Fail like bundler/setup when this checkout's gems were never installed."""
    if not gems_installed(app):
        raise ToolExit(
            7,
            "Could not find gems of this Gemfile.lock in locally installed gems.\n"
            "Run `bundle install` to install missing gems.",
        )
