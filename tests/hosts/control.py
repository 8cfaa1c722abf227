"""What a test reads from and sets in a host's Mastodon stand-in (``host.standin``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .standin import common
from .standin.admin_api import account_record, report_record

if TYPE_CHECKING:
    from .harness import TestHost

__all__ = ["StandinControl", "account_record", "report_record"]


class StandinControl:
    """Files under the host's /opt/standin, and the units' state in /run/standin."""

    def __init__(self, host: TestHost) -> None:
        self.host = host

    @property
    def folder(self) -> Path:
        return self.host.path(str(common.STATE_DIR))

    def _write(self, name: str, text: str) -> None:
        path = self.folder / name
        path.write_text(text)
        # The web process runs as the mastodon user and rewrites some of these.
        path.chmod(0o666)

    # -- what was called ------------------------------------------------------

    def calls(self, tool: str | None = None, contains: str | None = None) -> list[dict[str, Any]]:
        """Recorded calls in order; optionally one tool's, or those whose
        command line contains ``contains`` (e.g. "rails db:migrate")."""
        path = self.folder / common.CALLS
        lines = path.read_text().splitlines() if path.exists() else []
        calls = [json.loads(line) for line in lines if line.strip()]
        return [
            c
            for c in calls
            if (tool is None or c["tool"] == tool)
            and (contains is None or contains in c["command"])
        ]

    def commands(self, tool: str | None = None) -> list[str]:
        """Just the command lines, e.g. ["bundle install", "yarn install --immutable"]."""
        return [c["command"] for c in self.calls(tool)]

    def clear_calls(self) -> None:
        self._write(common.CALLS, "")

    # -- failure injection ----------------------------------------------------

    def fail(self, *patterns: str) -> None:
        """Make matching calls exit 1 (see common.failure_for for the syntax)."""
        path = self.folder / common.FAIL
        existing = path.read_text() if path.exists() else ""
        self._write(common.FAIL, existing + "".join(p + "\n" for p in patterns))

    def clear_failures(self) -> None:
        (self.folder / common.FAIL).unlink(missing_ok=True)

    def set_unhealthy(self, unhealthy: bool = True, versions: Iterable[str] = ()) -> None:
        """Make the web stand-in's /health answer 503 (or OK again); with
        ``versions`` (as Mastodon reports them, e.g. "4.6.0"), only while the
        web process runs one of those."""
        path = self.folder / common.UNHEALTHY
        if unhealthy:
            self._write(common.UNHEALTHY, "".join(f"{v}\n" for v in versions))
        else:
            path.unlink(missing_ok=True)

    # -- admin API data -------------------------------------------------------

    def seed_admin(
        self, accounts: Iterable[Mapping[str, Any]], reports: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """Accounts and reports the admin API serves (see account_record/report_record)."""
        data = {"accounts": [dict(a) for a in accounts], "reports": [dict(r) for r in reports]}
        self._write(common.ADMIN, json.dumps(data, indent=2))

    def admin_data(self) -> dict[str, Any]:
        path = self.folder / common.ADMIN
        return json.loads(path.read_text()) if path.exists() else {"accounts": [], "reports": []}

    def add_token(
        self,
        token: str,
        account_id: str,
        scopes: Iterable[str] = ("admin:read", "admin:write"),
    ) -> None:
        path = self.folder / common.TOKENS
        tokens = json.loads(path.read_text()) if path.exists() else {}
        tokens[token] = {"account_id": str(account_id), "scopes": list(scopes)}
        self._write(common.TOKENS, json.dumps(tokens, indent=2))

    def webhooks(self) -> dict[str, Any]:
        """Webhooks registered on the server, by URL (events, secret)."""
        path = self.folder / common.WEBHOOKS
        return json.loads(path.read_text()) if path.exists() else {}

    # -- state ----------------------------------------------------------------

    def databases(self) -> dict[str, Any]:
        """The stand-in's databases: migrations run, accounts, site settings."""
        path = self.folder / common.DATABASES
        return json.loads(path.read_text()) if path.exists() else {}

    def unit(self, name: str) -> dict[str, Any]:
        """A unit's state as the fake systemctl keeps it (host must run)."""
        name = name if "." in name else f"{name}.service"
        path = self.host.path(f"/run/standin/units/{name}.json")
        return json.loads(path.read_text()) if path.exists() else {"active": "inactive"}

    def unit_log(self, name: str) -> str:
        name = name if "." in name else f"{name}.service"
        path = self.host.path(f"/var/log/standin/{name}.log")
        return path.read_text(errors="replace") if path.exists() else ""
