"""The browser session: a signed cookie, and the CSRF token bound to it.

The cookie holds ids, never secrets: the user, the API token a person signed
in with (its id, so revoking the token ends the session too), the current
organisation, the CSRF token, and the state of an OIDC sign-in in progress.
It is signed (itsdangerous) with a key derived from the deployment's secret
key and carries its own age, so a copied cookie stops working after
`web_session_hours`.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from controlplane.crypto import derive_key, load_or_create_secret_key
from controlplane.settings import get_settings

COOKIE = "herd_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@lru_cache
def _serializer(key: bytes) -> URLSafeTimedSerializer:
    # A key of its own, so a leaked session key would not open secrets at
    # rest and the other way round.
    return URLSafeTimedSerializer(derive_key(key, b"herd/web-session/v1"), salt="herd-web-session")


def serializer() -> URLSafeTimedSerializer:
    return _serializer(load_or_create_secret_key(get_settings()))


@dataclass
class WebSession:
    data: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if self.data.get(key) != value:
            self.data[key] = value
            self.dirty = True

    def pop(self, key: str) -> Any:
        if key in self.data:
            self.dirty = True
        return self.data.pop(key, None)

    @property
    def csrf_token(self) -> str:
        token = self.data.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            self.set("csrf", token)
        return token

    def csrf_matches(self, presented: str | None) -> bool:
        expected = self.data.get("csrf")
        return bool(expected and presented) and hmac.compare_digest(
            str(expected).encode(), str(presented).encode()
        )

    def start_over(self, **values: Any) -> None:
        """A new session for a person who just signed in (or out): nothing of
        the anonymous one survives, the CSRF token included, so a token an
        attacker planted before sign-in is worthless after it."""
        self.data = {"csrf": secrets.token_urlsafe(32), **values}
        self.dirty = True


def load(request: Request) -> WebSession:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return WebSession()
    max_age = get_settings().web_session_hours * 3600
    try:
        data = serializer().loads(raw, max_age=max_age)
    except BadSignature:
        # Tampered, from another deployment, or expired: start anonymous.
        return WebSession(dirty=True)
    return WebSession(data if isinstance(data, dict) else {})


def save(response: Response, session: WebSession) -> None:
    if not session.dirty:
        return
    settings = get_settings()
    response.set_cookie(
        COOKIE,
        serializer().dumps(session.data),
        max_age=settings.web_session_hours * 3600,
        path="/",
        secure=settings.web_cookie_secure,
        httponly=True,
        samesite="lax",
    )
