"""Keyset pagination over UUIDv7 primary keys.

A page is `WHERE id > :after ORDER BY id LIMIT :n+1`: the cost of a page does
not depend on how deep it is, and one extra row tells whether another follows.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
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
