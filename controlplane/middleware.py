"""ASGI middleware: request ids, request metrics, body limits, abuse limits
and the early checks on webhook deliveries.

Written against raw ASGI rather than BaseHTTPMiddleware so streaming answers
(server-sent events) pass through untouched.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane import ratelimit
from controlplane.db import statement_count
from controlplane.ops.metrics import LATENCY, REQUESTS, STATEMENTS
from controlplane.problems import problem_response
from controlplane.ratelimit import Limit
from controlplane.requestctx import bind_request_id, reset_request_id
from controlplane.settings import Settings


class RequestContextMiddleware:
    """Binds the request id, counts SQL statements and records metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        token = bind_request_id(headers.get(b"x-request-id", b"").decode("latin-1") or None)
        counter = [0]
        count_token = statement_count.set(counter)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                from controlplane.requestctx import current_request_id

                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", (current_request_id() or "").encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - started)
            STATEMENTS.labels(method, route).observe(counter[0])
            statement_count.reset(count_token)
            reset_request_id(token)


def _route_template(scope: Scope) -> str:
    # The template, never the raw path: ids in label values would make one
    # time series per server.
    route: Any = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class BodyLimitMiddleware:
    """Refuses bodies over the limit before the application reads them:
    at once by Content-Length, and while streaming for chunked bodies.

    Not FastAPI's own max_body_size: that answers a declared oversize body
    with text/plain, and every error here is problem+json."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = problem_response(
                413,
                "payload-too-large",
                "Request body too large",
                f"the body exceeds {self.max_bytes} bytes",
            )
            await response(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # An HTTPException, because FastAPI re-raises those from
                    # body parsing where it would turn anything else into 400.
                    raise HTTPException(413, f"the body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


# The endpoints that mint API tokens: keyed by the caller's token (its
# lookup part), or by address where the caller has none yet.
TOKEN_ISSUING = frozenset({("POST", "/api/v1/tokens"), ("POST", "/api/v1/invitations/accept")})
# The portal's sign-in by pasted token: credentials in a form, not a header.
SIGN_IN_FORMS = frozenset({("POST", "/sign-in/token")})


class RateLimitMiddleware:
    """Abuse limits, before the application does any work: API tokens created
    per caller, and failed authentication per client address (a request
    answered 401 that carried credentials takes from the address's bucket;
    when it is empty, every request from there with credentials gets a 429
    without its token being looked at, so guessing stops being free).

    Behind a load balancer the client address is the balancer's unless
    uvicorn trusts its X-Forwarded-For (--forwarded-allow-ips)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limiter = ratelimit.limiter(settings)
        self.creations = Limit("token-creations", settings.rate_limit_token_creations)
        self.failures = Limit("auth-failures", settings.rate_limit_auth_failures)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        credentials = dict(scope.get("headers") or []).get(b"authorization")
        if (scope["method"], scope["path"]) in SIGN_IN_FORMS:
            credentials = credentials or b"form"
        if credentials is not None:
            wait = await run_in_threadpool(self.limiter.take, address, self.failures, False)
            if wait:
                await _too_many(scope, receive, send, wait, "too many failed authentications")
                return
        if (scope["method"], scope["path"].rstrip("/")) in TOKEN_ISSUING:
            wait = await run_in_threadpool(
                self.limiter.take, _caller_key(credentials, address), self.creations
            )
            if wait:
                await _too_many(scope, receive, send, wait, "too many API tokens created")
                return

        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status == 401 and credentials is not None:
            await run_in_threadpool(self.limiter.take, address, self.failures)


def _caller_key(credentials: bytes | None, address: str) -> str:
    # herd_<lookup>_<secret>: the lookup names the token without its secret,
    # so no secret is used as (or stored in) a key.
    parts = (credentials or b"").decode("latin-1").removeprefix("Bearer ").split("_", 2)
    if len(parts) == 3 and parts[0] == "herd" and parts[1]:
        return "token:" + parts[1]
    return "address:" + address


async def _too_many(scope: Scope, receive: Receive, send: Send, wait: float, what: str) -> None:
    seconds = ratelimit.retry_after(wait)
    response = problem_response(
        429,
        "rate-limited",
        "Too many requests",
        f"{what}; try again in {seconds} s",
        headers={"Retry-After": seconds},
    )
    await response(scope, receive, send)


class SignedWebhookMiddleware:
    """Webhook endpoints are answered by their signature, not a token, so
    anyone can reach them: refuse a delivery without its signature header,
    or larger than a webhook can be, before a byte of its body is read.
    (The route still verifies the signature itself.)"""

    def __init__(self, app: ASGIApp, signed: dict[str, bytes], max_bytes: int) -> None:
        self.app = app
        # path -> the header that must carry the signature; a path ending in
        # "/" covers every path under it (one endpoint per sending server).
        self.signed = signed
        self.max_bytes = max_bytes

    def _header_for(self, path: str) -> bytes | None:
        if path in self.signed:
            return self.signed[path]
        return next(
            (h for p, h in self.signed.items() if p.endswith("/") and path.startswith(p)), None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = self._header_for(scope["path"]) if scope["type"] == "http" else None
        if header is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not headers.get(header):
            response = problem_response(
                400,
                "bad-signature",
                "Webhook signature not valid",
                f"the {header.decode()} header is missing",
            )
            await response(scope, receive, send)
            return
        await BodyLimitMiddleware(self.app, self.max_bytes)(scope, receive, send)
