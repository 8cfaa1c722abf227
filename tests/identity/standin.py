"""A Keycloak admin API stand-in: a threaded HTTP server on 127.0.0.1.

It answers the endpoints Herd uses with Keycloak's paths, JSON shapes and
status codes (measured against Keycloak 26; see `routes.py` and `routes_brokering.py`),
requires a Bearer token from its own token endpoint, and keeps its state in
memory where tests can read it. Herd's real code (python-keycloak included)
talks to it exactly as it would to Keycloak.

    with KeycloakStandIn() as keycloak:
        settings = keycloak.settings()          # IdentitySettings pointing here
        ...
        keycloak.realm("herd-acme").client("mastodon-…")

It also serves documents under /upstream/… (an OIDC discovery document, SAML
metadata) for import-config to fetch, without authentication.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from controlplane.identity.settings import IdentitySettings

ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-password-for-tests"
SERVICE_CLIENT, SERVICE_SECRET = "herd-admin", "service-secret-for-tests"
TOKEN_LIFESPAN = 60  # the master realm's default access token lifespan


class Answer(Exception):
    """Raised by a route to end the request with this status and body."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


@dataclass
class Realm:
    rep: dict[str, Any]
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)  # by internal id
    secrets: dict[str, str] = field(default_factory=dict)  # by internal id
    idps: dict[str, dict[str, Any]] = field(default_factory=dict)  # by alias
    mappers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by id

    @property
    def name(self) -> str:
        return self.rep["realm"]

    def client(self, client_id: str) -> dict[str, Any] | None:
        return next((c for c in self.clients.values() if c["clientId"] == client_id), None)

    def secret_of(self, client_id: str) -> str | None:
        found = self.client(client_id)
        return None if found is None else self.secrets.get(found["id"])

    def mappers_of(self, alias: str) -> list[dict[str, Any]]:
        return [m for m in self.mappers.values() if m["identityProviderAlias"] == alias]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body.strip():
            raise Answer(
                500,
                {
                    "error": "unknown_error",
                    "error_description": "For more on this error consult the server log.",
                },
            )
        try:
            return json.loads(self.body)
        except ValueError:
            raise Answer(
                400, {"error": "invalid_request", "error_description": "Cannot parse the JSON"}
            ) from None


class KeycloakStandIn:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.realms: dict[str, Realm] = {}
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.refresh_tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.documents: dict[str, tuple[str, bytes]] = {}
        # Called with (method, path) before a request is answered; a hook may
        # change state, or raise Answer to answer in the route's place.
        self.hooks: list[Callable[[str, str], None]] = []
        # (method, path pattern) pairs whose next request is carried out but
        # whose answer never arrives: the connection closes instead.
        self.lost_answers: list[tuple[str, re.Pattern[str]]] = []
        # When set, every request is answered with this status (an outage).
        self.outage: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_realm({"realm": "master", "displayName": "Keycloak"})

    # -- life cycle -----------------------------------------------------------

    def start(self) -> KeycloakStandIn:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> KeycloakStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def settings(self, **overrides: Any) -> IdentitySettings:
        """Settings that point Herd here, signing in with the service client."""
        values: dict[str, Any] = {
            "url": self.url,
            "public_url": "https://sso.provider.test",
            "admin_client_id": SERVICE_CLIENT,
            "admin_client_secret": SERVICE_SECRET,
            "timeout_seconds": 5,
            **overrides,
        }
        return IdentitySettings(**values)

    # -- what tests read and set up ------------------------------------------

    def lose_next_answer(self, method: str, pattern: str) -> None:
        with self.lock:
            self.lost_answers.append((method, re.compile(pattern + "$")))

    def _answer_lost(self, method: str, path: str) -> bool:
        with self.lock:
            for entry in self.lost_answers:
                if entry[0] == method and entry[1].match(path):
                    self.lost_answers.remove(entry)
                    return True
        return False

    def realm(self, name: str) -> Realm:
        with self.lock:
            return self.realms[name]

    def writes(self) -> list[tuple[str, str]]:
        """Every state-changing admin call so far. Token requests and
        import-config (a POST that only reads a document) are not writes."""
        with self.lock:
            return [
                (m, p)
                for m, p in self.requests
                if m != "GET" and not p.endswith(("/token", "/import-config"))
            ]

    def publish(self, path: str, body: str | bytes, content_type: str) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.documents["/upstream/" + path.lstrip("/")] = (content_type, data)
        return f"{self.url}/upstream/{path.lstrip('/')}"

    def add_realm(self, rep: dict[str, Any]) -> Realm:
        defaults = {
            "id": str(uuid.uuid4()),
            "enabled": False,
            "sslRequired": "external",
            "registrationAllowed": False,
            "loginWithEmailAllowed": True,
            "duplicateEmailsAllowed": False,
            "bruteForceProtected": False,
            "attributes": {},
        }
        realm = Realm({**defaults, **rep})
        with self.lock:
            self.realms[realm.name] = realm
        return realm

    def add_client(self, realm: Realm, rep: dict[str, Any]) -> dict[str, Any]:
        defaults = {
            "id": str(uuid.uuid4()),
            "name": "",
            "description": "",
            "surrogateAuthRequired": False,
            "enabled": True,
            "alwaysDisplayInConsole": False,
            "clientAuthenticatorType": "client-secret",
            "redirectUris": [],
            "webOrigins": [],
            "notBefore": 0,
            "bearerOnly": False,
            "consentRequired": False,
            "standardFlowEnabled": True,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": False,
            "publicClient": False,
            "frontchannelLogout": True,
            "protocol": "openid-connect",
            "fullScopeAllowed": True,
            "nodeReRegistrationTimeout": -1,
            "defaultClientScopes": ["web-origins", "acr", "roles", "profile", "basic", "email"],
            "optionalClientScopes": ["address", "phone", "offline_access", "microprofile-jwt"],
        }
        client = {**defaults, **rep}
        client["attributes"] = {
            **(rep.get("attributes") or {}),
            "realm_client": "false",
            "client.secret.creation.time": str(int(time.time())),
        }
        with self.lock:
            realm.clients[client["id"]] = client
            if not client["publicClient"]:
                realm.secrets[client["id"]] = new_secret()
        return client

    # -- tokens ---------------------------------------------------------------

    def issue_token(self, with_refresh: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        answer: dict[str, Any] = {
            "access_token": access,
            "expires_in": TOKEN_LIFESPAN,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "profile email",
        }
        with self.lock:
            self.tokens[access] = time.monotonic() + TOKEN_LIFESPAN
            if with_refresh:
                refresh = "rt-" + secrets.token_urlsafe(24)
                self.refresh_tokens.add(refresh)
                answer.update(
                    refresh_token=refresh,
                    refresh_expires_in=1800,
                    session_state=str(uuid.uuid4()),
                )
        return answer

    def expire_tokens(self) -> None:
        """Forget every access token, as a restarted Keycloak would not (but an
        expired one does): the next admin call gets a 401."""
        with self.lock:
            self.tokens.clear()

    def authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self.lock:
            expiry = self.tokens.get(header.removeprefix("Bearer "))
        return expiry is not None and expiry > time.monotonic()


def new_secret() -> str:
    # Keycloak's generated client secrets are 32 characters of [A-Za-z0-9].
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(32))


class _Handler(BaseHTTPRequestHandler):
    standin: KeycloakStandIn
    protocol_version = "HTTP/1.1"
    # One write per answer, sent at once: without these, delayed ACKs add
    # tens of milliseconds to every keep-alive request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        # Imported here: the route modules import this one. Importing
        # routes_brokering registers its routes.
        from tests.identity import routes, routes_brokering  # noqa: F401

        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method,
            parts.path,
            {k: v[0] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        standin = self.standin
        with standin.lock:
            standin.requests.append((method, request.path))
        try:
            if standin.outage is not None:
                raise Answer(standin.outage, {"error": "unknown_error"})
            for hook in list(standin.hooks):
                hook(method, request.path)
            answer = routes.dispatch(standin, request, self._base())
        except Answer as raised:
            answer = raised
        if standin._answer_lost(method, request.path):
            # The request took effect; the caller never hears back.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(answer)

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _send(self, answer: Answer) -> None:
        if answer.body is None:
            data, content_type = b"", None
        elif isinstance(answer.body, tuple):
            content_type, data = answer.body
        else:
            data, content_type = json.dumps(answer.body).encode(), "application/json"
        self.send_response(answer.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
