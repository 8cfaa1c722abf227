"""ASGI middleware: request ids, request metrics and body limits.

Written against raw ASGI rather than BaseHTTPMiddleware so streaming answers
(server-sent events) pass through untouched.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane.db import statement_count
from controlplane.ops.metrics import LATENCY, REQUESTS, STATEMENTS
from controlplane.problems import problem_response
from controlplane.requestctx import bind_request_id, reset_request_id


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
