"""Keyset pagination over UUIDv7 primary keys.

A page is `WHERE id > :after ORDER BY id LIMIT :n+1`: the cost of a page does
not depend on how deep it is, and one extra row tells whether another follows.
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select

from controlplane.problems import InvalidInput
from controlplane.settings import get_settings

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageRequest(BaseModel):
    after: uuid.UUID | None = None
    limit: int


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("the cursor is not one this API handed out") from exc


# A position in a list ordered by (a time, id): microseconds since the epoch
# and the id's 16 bytes. For lists whose order is not the ids' own, such as
# reports by when each is due.
_KEY = struct.Struct(">q16s")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_key_cursor(at: datetime, last_id: uuid.UUID) -> str:
    micros = (at - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(_KEY.pack(micros, last_id.bytes)).decode().rstrip("=")


def decode_key_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, id_bytes = _KEY.unpack(raw)
        return _EPOCH + timedelta(microseconds=micros), uuid.UUID(bytes=id_bytes)
    except (binascii.Error, ValueError, struct.error, OverflowError) as exc:
        raise InvalidInput("the cursor is not one this API handed out") from exc


def page_request(
    cursor: Annotated[str | None, Query(max_length=64, description="from next_cursor")] = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
) -> PageRequest:
    settings = get_settings()
    size = min(limit or settings.default_page_size, settings.max_page_size)
    return PageRequest(after=decode_cursor(cursor) if cursor else None, limit=size)


def paginate(statement: Select[Any], id_column: Any, page: PageRequest) -> Select[Any]:
    if page.after is not None:
        statement = statement.where(id_column > page.after)
    return statement.order_by(id_column).limit(page.limit + 1)


def finish_page(rows: Sequence[Any], page: PageRequest, id_of: Any) -> tuple[list[Any], str | None]:
    """Trim the look-ahead row and compute the next cursor."""
    items = list(rows[: page.limit])
    more = len(rows) > page.limit
    return items, (encode_cursor(id_of(items[-1])) if more and items else None)
