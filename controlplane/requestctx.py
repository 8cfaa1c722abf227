"""Per-request context: the request id, bound for logs, audit and problems."""

from __future__ import annotations

import contextvars
import re
import uuid

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# A caller's id is kept only when it is short and plain, so a header cannot
# smuggle text into logs or the audit trail.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(candidate: str | None) -> contextvars.Token[str | None]:
    value = candidate if candidate and _ACCEPTABLE.match(candidate) else uuid.uuid4().hex
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)
