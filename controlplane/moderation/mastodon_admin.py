"""A small typed client of Mastodon's admin API for moderation: reports and
account actions (docs.joinmastodon.org/methods/admin/reports, …/accounts).

httpx's and the server's errors become `AdminApiError` here, so the queue's
service never catches an httpx exception. Tokens travel only in the
Authorization header and never appear in an error's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

ACTION_TYPES = ("none", "sensitive", "disable", "silence", "suspend")
ActionType = Literal["none", "sensitive", "disable", "silence", "suspend"]
ReportChange = Literal["assign_to_self", "unassign", "resolve", "reopen"]
# Mastodon answers at most 200 reports a page; a fleet server with more open
# than this many pages has bigger problems than the queue.
PAGE_LIMIT = 200
MAX_PAGES = 50
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class AdminApiError(Exception):
    """The server could not be reached, or refused or failed the call.
    `status` is None when no answer came back."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AccountRef:
    id: str
    acct: str


@dataclass(frozen=True)
class AdminReport:
    """What Herd reads of Mastodon's Admin::Report."""

    id: str
    category: str
    comment: str
    forwarded: bool
    created_at: datetime
    updated_at: datetime
    action_taken: bool
    action_taken_at: datetime | None
    reporter: AccountRef | None
    target: AccountRef
    assigned: AccountRef | None

    @classmethod
    def parse(cls, body: Any) -> AdminReport:
        """From the JSON of an Admin::Report; ValueError when it is not one."""
        if not isinstance(body, Mapping):
            raise ValueError("a report is a JSON object")
        try:
            target = _account(body.get("target_account"))
            if target is None:
                raise ValueError("the report has no target_account")
            created = _when(body["created_at"])
            return cls(
                id=_id(body["id"]),
                category=str(body.get("category") or "other")[:30],
                comment=str(body.get("comment") or ""),
                forwarded=bool(body.get("forwarded")),
                created_at=created,
                updated_at=_when(body.get("updated_at") or body["created_at"]),
                action_taken=bool(body.get("action_taken")),
                action_taken_at=_when(body["action_taken_at"])
                if body.get("action_taken_at")
                else None,
                reporter=_account(body.get("account")),
                target=target,
                assigned=_account(body.get("assigned_account")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an Admin::Report: {exc}") from None


def _id(value: Any) -> str:
    text = str(value)
    if not text or len(text) > 40:
        raise ValueError("an id is 1 to 40 characters")
    return text


def _when(value: Any) -> datetime:
    # Mastodon writes "2026-12-01T10:00:00.000Z"; fromisoformat reads it.
    stamp = datetime.fromisoformat(str(value))
    if stamp.tzinfo is None:
        raise ValueError("a timestamp without a time zone")
    return stamp


def _account(value: Any) -> AccountRef | None:
    """An Admin::Account (with its nested Account) to (id, acct)."""
    if not isinstance(value, Mapping):
        return None
    inner = value.get("account") if isinstance(value.get("account"), Mapping) else {}
    acct = inner.get("acct") or value.get("username") or ""
    if value.get("domain") and "@" not in acct:
        acct = f"{acct}@{value['domain']}"
    return AccountRef(_id(value["id"]), str(acct)[:300])


class MastodonAdmin:
    """One server's admin API with one moderator's token.

    `base_url` is where Herd reaches the server's web process; `host` is the
    server's domain when that is not the URL's own (a direct connection to
    the host), sent with X-Forwarded-Proto as nginx would."""

    def __init__(
        self,
        base_url: str,
        token: str,
        host: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if host:
            headers |= {"Host": host, "X-Forwarded-Proto": "https"}
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )

    def __enter__(self) -> MastodonAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.close()

    # -- reports -----------------------------------------------------------------

    def open_reports(self) -> Iterator[AdminReport]:
        """Every unresolved report, newest first, following the Link header.
        The link names the server's public address: only its path and query
        are used, so a direct connection stays direct."""
        url: str | None = f"/api/v1/admin/reports?resolved=false&limit={PAGE_LIMIT}"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._call("GET", url)
            page = self._json(response)
            if not isinstance(page, list):
                raise AdminApiError("the report list is not a JSON array", response.status_code)
            if not page:
                return
            yield from (self._report(item) for item in page)
            url = _next_link(response.headers.get("link"))

    def report(self, report_id: str) -> AdminReport:
        return self._report(self._json(self._call("GET", f"/api/v1/admin/reports/{report_id}")))

    def change(self, report_id: str, change: ReportChange) -> AdminReport:
        answer = self._call("POST", f"/api/v1/admin/reports/{report_id}/{change}")
        return self._report(self._json(answer))

    def account_action(
        self, account_id: str, kind: ActionType, text: str = "", report_id: str | None = None
    ) -> None:
        """Admin::AccountAction: with a report, Mastodon resolves it (and for
        any kind but "none", every open report about the account)."""
        form = {"type": kind, "text": text}
        if report_id is not None:
            form["report_id"] = report_id
        self._call("POST", f"/api/v1/admin/accounts/{account_id}/action", data=form)

    # -- plumbing ----------------------------------------------------------------

    def _call(self, method: str, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = self._client.request(method, url, data=data)
        except httpx.HTTPError as exc:
            raise AdminApiError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            raise AdminApiError(
                f"{method} {urlsplit(url).path} answered {response.status_code}"
                f"{_error_text(response)}",
                response.status_code,
            )
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise AdminApiError("the answer is not JSON", response.status_code) from None

    @staticmethod
    def _report(body: Any) -> AdminReport:
        try:
            return AdminReport.parse(body)
        except ValueError as exc:
            raise AdminApiError(str(exc)) from None


def _next_link(header: str | None) -> str | None:
    match = _NEXT.search(header or "")
    if match is None:
        return None
    parts = urlsplit(match.group(1))
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("error") if isinstance(body, dict) else None
    return f": {str(message)[:200]}" if message else ""
