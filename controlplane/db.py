"""Database engines and sessions.

One engine per URL per process. SQLite gets WAL, foreign keys and a busy
timeout so the API and the worker can share the embedded file; PostgreSQL gets
a statement timeout so a stuck query cannot hold a request forever.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from controlplane.settings import get_settings

# Counts statements per request (or per task) so /metrics can show whether a
# request's query count grows with page size: it must not.
statement_count: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "statement_count", default=None
)


def _count_statement(*_args: Any) -> None:
    counter = statement_count.get()
    if counter is not None:
        counter[0] += 1


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            connect_args={"options": "-c statement_timeout=30000"},
        )
    event.listen(engine, "before_cursor_execute", _count_statement)
    return engine


_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        engine = _engines.setdefault(url, make_engine(url))
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and forked worker processes)."""
    for url in list(_engines):
        _engines.pop(url).dispose()


def get_engine() -> Engine:
    return engine_for(get_settings().resolved_database_url)


@contextmanager
def unit_of_work(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits once when the block ends cleanly, else rolls back."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
