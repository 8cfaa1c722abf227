"""Liveness and readiness.

`/healthz/live` says the process answers. `/healthz` (readiness) also checks
the database and the broker, since without either Herd can accept no order.
Results are cached for a few seconds so a tight probe loop cannot turn into
load on PostgreSQL or the broker.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kombu import Connection
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from controlplane.db import engine_for, get_engine
from controlplane.problems import problem_response
from controlplane.settings import get_settings

router = APIRouter(tags=["operations"])


@dataclass
class _Cached:
    at: float = 0.0
    checks: dict[str, str] | None = None


_cache = _Cached()
_lock = threading.Lock()


def _check_database() -> str:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def _check_broker() -> str:
    url = get_settings().resolved_broker_url
    try:
        if url.startswith("sqla+"):
            # kombu's SQLAlchemy transport connects lazily and would report
            # success for a database it cannot open; ask the database itself.
            with engine_for(url.removeprefix("sqla+")).connect() as connection:
                connection.execute(text("SELECT 1"))
        else:
            with Connection(url, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"
    return "ok"


def readiness() -> dict[str, str]:
    ttl = get_settings().readiness_cache_seconds
    with _lock:
        if _cache.checks is not None and time.monotonic() - _cache.at < ttl:
            return _cache.checks
        checks = {"database": _check_database(), "broker": _check_broker()}
        _cache.at, _cache.checks = time.monotonic(), checks
        return checks


def reset_cache() -> None:
    with _lock:
        _cache.checks = None


@router.get("/healthz/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/healthz")
def ready() -> JSONResponse:
    checks = readiness()
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ok", "checks": checks})
    failing = ", ".join(name for name, value in checks.items() if value != "ok")
    return problem_response(503, "not-ready", "Not ready", f"unavailable: {failing}", checks=checks)
