"""The stand-in for Mastodon's web process (puma), run by the fake systemctl.

Listens on BIND:PORT (default 127.0.0.1:3000) like puma under Mastodon's
unit, reads the checkout it runs in (WorkingDirectory) for the version and
``.env.production``, refuses to boot where Mastodon would, and reloads both
on SIGUSR1 (what ``systemctl reload mastodon-web`` sends for a phased
restart): until then it keeps answering with the version it booted with.

Answers: /health, /api/v1/instance, /api/v2/instance, /.well-known/nodeinfo,
/nodeinfo/2.0, /api/v1/accounts/verify_credentials and the admin API
(admin_api.py). In production it redirects plain-HTTP requests to https
except /health, like Mastodon's force_ssl: callers must send
``X-Forwarded-Proto: https`` as nginx does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import admin_api, checkout, instance
from .common import TOKENS, UNHEALTHY, read_json, state_path
from .database import database_name, databases


@dataclass
class Config:
    env: dict[str, str]
    version: str
    api_version: int

    @property
    def web_domain(self) -> str:
        return instance.domains(self.env)[1]

    def database(self) -> dict[str, Any]:
        with databases() as dbs:
            return dbs.get(database_name(self.env), {})


def load_config() -> Config:
    root = checkout.require_root(os.getcwd(), "mastodon-web")
    env = checkout.rails_env(root, os.environ)
    problems = checkout.boot_problems(env)
    if problems:
        raise SystemExit("\n".join(problems))
    version = checkout.read_version(root, env)
    return Config(env, str(version), version.api_version)


def unhealthy(version: str) -> bool:
    """Whether /health answers 503: while the UNHEALTHY file exists and is
    empty, for every version; when it lists versions (one a line, e.g.
    ``4.6.0``), only while one of them runs, so a test can make a new release
    fail its health gate and the release a rollback returns to pass it."""
    path = state_path(UNHEALTHY)
    if not path.exists():
        return False
    listed = path.read_text().split()
    return not listed or version in listed


class Handler(BaseHTTPRequestHandler):
    server_version = "Mastodon"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    config: Config  # set on the class by serve()

    # -- plumbing -------------------------------------------------------------

    def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, str | bytes):
            payload = body.encode() if isinstance(body, str) else body
            content_type = "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body).encode()
            content_type = "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def form(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if not raw:
            return {}
        if "json" in (self.headers.get("Content-Type") or ""):
            return json.loads(raw)
        fields: dict[str, Any] = {}
        for key, values in parse_qs(raw).items():
            fields[key.removesuffix("[]")] = values if key.endswith("[]") else values[-1]
        return fields

    def redirect_to_https(self, path: str) -> bool:
        host = self.headers.get("Host", "")
        if (
            self.config.env.get("RAILS_ENV") != "production"
            or path.startswith("/health")
            or self.headers.get("X-Forwarded-Proto") == "https"
            or host.endswith((".onion", ".i2p"))
        ):
            return False
        self.send(301, "", {"Location": f"https://{host or self.config.web_domain}{self.path}"})
        return True

    # -- routes -----------------------------------------------------------------

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if self.redirect_to_https(path):
            return
        form = self.form() if method in ("POST", "PUT", "PATCH") else {}
        if method == "GET" and self.public(path):
            return
        answer = admin_api.handle(
            method, path, query, dict(self.headers.items()), form, self.config.web_domain
        )
        if answer is not None:
            self.send(answer.status, answer.body, answer.headers)
        elif method == "GET" and path == "/api/v1/accounts/verify_credentials":
            self.verify_credentials()
        elif path.startswith("/api/"):
            self.send(404, {"error": "Record not found"})
        else:
            self.send(404, "Not Found")

    def public(self, path: str) -> bool:
        config = self.config
        if path == "/health":
            sick = unhealthy(config.version)
            self.send(503 if sick else 200, "Service Unavailable" if sick else "OK")
            return True
        if path == "/.well-known/nodeinfo":
            self.send(200, instance.nodeinfo_links(config.env))
            return True
        if path not in ("/api/v1/instance", "/api/v2/instance", "/nodeinfo/2.0"):
            return False
        db = config.database()
        settings, users = db.get("settings", {}), len(db.get("accounts", {}))
        if path == "/api/v2/instance":
            body = instance.instance_v2(
                config.env, config.version, config.api_version, settings, users
            )
        elif path == "/api/v1/instance":
            body = instance.instance_v1(config.env, config.version, settings, users)
        else:
            body = instance.nodeinfo(config.env, config.version, settings, users)
        self.send(200, body)
        return True

    def verify_credentials(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        record = read_json(TOKENS, {}).get(token)
        if record is None:
            self.send(401, {"error": "The access token is invalid"})
            return
        with admin_api.admin_data() as data:
            account = next(
                (a for a in data["accounts"] if a["id"] == str(record.get("account_id"))),
                admin_api.account_record(str(record.get("account_id")), "unknown"),
            )
        self.send(200, admin_api.account_entity(account, self.config.web_domain))

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_HEAD(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def serve(config: Config) -> None:
    Handler.config = config

    def phased_restart(_signum: int, _frame: object) -> None:
        # Like puma: new workers boot the code and .env now on disk; if they
        # cannot boot, the old ones keep serving.
        try:
            Handler.config = load_config()
            print(f"reloaded: version {Handler.config.version}", file=sys.stderr, flush=True)
        except SystemExit as exc:
            print(f"reload failed, keeping the running version: {exc}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGUSR1, phased_restart)
    bind = config.env.get("BIND") or "127.0.0.1"
    port = int(config.env.get("PORT") or 3000)
    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(
        f"* Listening on http://{bind}:{port} (Mastodon {config.version})",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()


def main(_argv: list[str]) -> int:
    serve(load_config())
    return 0
