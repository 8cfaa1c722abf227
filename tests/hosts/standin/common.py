"""What every stand-in executable shares: the call record and failure injection.

Standard library only: this package runs inside test hosts under the system
Python (/usr/lib/herd-standin), and is imported by the tests too.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# HERD_STANDIN_DIR lets the unit tests run the stand-in outside a host.
STATE_DIR = Path(os.environ.get("HERD_STANDIN_DIR", "/opt/standin"))
CALLS = "calls.jsonl"
FAIL = "fail"
UNHEALTHY = "unhealthy"
TOKENS = "tokens.json"
WEBHOOKS = "webhooks.json"
ADMIN = "reports.json"
DATABASES = "databases.json"
SETTINGS = "settings.json"

# The environment variables a test may want to check: how each step was run.
RECORDED_ENV = frozenset(
    {
        "RAILS_ENV",
        "NODE_ENV",
        "SKIP_POST_DEPLOYMENT_MIGRATIONS",
        "SAFETY_ASSURED",
        "DISABLE_DATABASE_ENVIRONMENT_CHECK",
        "RUBY_CONFIGURE_OPTS",
        "RBENV_ROOT",
        "RBENV_VERSION",
        "LOCAL_DOMAIN",
        "WEB_DOMAIN",
        "PORT",
        "BIND",
        "HOME",
        "PATH",
        "COREPACK_ENABLE_DOWNLOAD_PROMPT",
    }
)
RECORDED_PREFIXES = ("BUNDLE_", "OIDC_", "S3_", "DB_", "REDIS_", "ES_", "SMTP_", "YARN_")


class ToolExit(Exception):
    """Leave the tool with this status (after printing ``message`` to stderr)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def state_path(name: str) -> Path:
    return STATE_DIR / name


def recorded_env(env: Mapping[str, str]) -> dict[str, str]:
    return {
        key: value
        for key, value in sorted(env.items())
        if key in RECORDED_ENV or key.startswith(RECORDED_PREFIXES)
    }


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def record(tool: str, argv: Sequence[str], extra: Mapping[str, Any] | None = None) -> None:
    """Append one JSON line about this call to /opt/standin/calls.jsonl."""
    uid = os.getuid()
    entry: dict[str, Any] = {
        "ts": round(time.time(), 6),
        "tool": tool,
        "argv": [os.path.basename(argv[0]), *argv[1:]],
        "argv0": argv[0],
        "command": " ".join([tool, *argv[1:]]),
        "cwd": os.getcwd(),
        "uid": uid,
        "user": user_name(uid),
        "pid": os.getpid(),
        "env": recorded_env(os.environ),
    }
    if extra:
        entry.update(extra)
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    # One write with O_APPEND: lines from concurrent calls never interleave.
    fd = os.open(state_path(CALLS), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def failure_for(command: str, env: Mapping[str, str]) -> str | None:
    """The line of /opt/standin/fail that makes this command fail, if any.

    Each line is a pattern: leading ``NAME=value`` words must match the
    environment, the rest must occur in the command (``bundle exec rails
    db:migrate`` ...). ``re:`` makes the rest a regular expression. So
    ``SKIP_POST_DEPLOYMENT_MIGRATIONS=true rails db:migrate`` fails only the
    pre-deployment migration.
    """
    path = state_path(FAIL)
    if not path.exists():
        return None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and _matches(line, command, env):
            return line
    return None


def _matches(line: str, command: str, env: Mapping[str, str]) -> bool:
    words = line.split(" ")
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
        name, _, value = words.pop(0).partition("=")
        if env.get(name) != value:
            return False
    pattern = " ".join(words)
    if pattern.startswith("re:"):
        return re.search(pattern[3:], command) is not None
    return pattern in command


def read_json(name: str, default: Any) -> Any:
    path = state_path(name)
    if not path.exists():
        return default
    return json.loads(path.read_text() or "null") or default


def write_json(name: str, data: Any) -> None:
    """Replace a state file whole, so a reader never sees half of it."""
    path = state_path(name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.chmod(0o666)
    os.replace(tmp, path)


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def warn(text: str) -> None:
    sys.stderr.write(text + "\n")
