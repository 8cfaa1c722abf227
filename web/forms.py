"""Turning form fields into the API's own input schemas, so a page accepts
exactly what the API accepts."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: dict[str, Any]) -> tuple[M | None, dict[str, str]]:
    """The model, or the error message for each field that failed."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(where, error["msg"].removeprefix("Value error, "))
        return None, errors


def blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None
