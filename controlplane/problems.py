"""Domain exceptions and their RFC 9457 problem+json answers.

Services raise these; one set of handlers turns them into answers, so no
route builds an error response of its own. `type` is stable: clients branch
on it, never on `title` or `detail`.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from controlplane.requestctx import current_request_id

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:herd:problem:"
log = logging.getLogger(__name__)


class HerdError(Exception):
    status: int = 400
    kind: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(HerdError):
    status, kind, title = 404, "not-found", "Not found"


class Conflict(HerdError):
    status, kind, title = 409, "conflict", "Conflict"


class InvalidTransition(Conflict):
    kind, title = "invalid-transition", "Invalid state transition"


class AlreadyExists(Conflict):
    kind, title = "already-exists", "Already exists"


class Unauthenticated(HerdError):
    status, kind, title = 401, "unauthenticated", "Authentication required"


class Forbidden(HerdError):
    status, kind, title = 403, "forbidden", "Forbidden"


class InsufficientScope(Forbidden):
    kind, title = "insufficient-scope", "Token lacks the required scope"


class InvalidInput(HerdError):
    status, kind, title = 422, "invalid-input", "Invalid input"


class PayloadTooLarge(HerdError):
    status, kind, title = 413, "payload-too-large", "Request body too large"


class ServiceUnavailable(HerdError):
    status, kind, title = 503, "unavailable", "Service unavailable"


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind,
        "title": title,
        "status": status,
        "detail": detail,
    }
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _herd_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HerdError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return problem_response(exc.status, exc.kind, exc.title, exc.detail, headers, **exc.extra)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": [str(part) for part in error.get("loc", ())],
            "message": error.get("msg", ""),
            "kind": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    if any(error["kind"] == "json_invalid" for error in errors):
        return problem_response(
            400, "malformed-body", "Malformed body", "the request body is not valid JSON"
        )
    return problem_response(
        422,
        "invalid-input",
        "Invalid input",
        "the request does not match the schema",
        errors=json.loads(json.dumps(errors, default=str)),
    )


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {
        400: "malformed-body",
        404: "not-found",
        405: "method-not-allowed",
        413: "payload-too-large",
    }
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "HTTP error"
    return problem_response(
        exc.status_code,
        kinds.get(exc.status_code, "http-error"),
        title,
        str(exc.detail),
        dict(exc.headers) if exc.headers else None,
    )


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The request id ties the answer to the log line; the exception text may
    # hold data from the request, so it stays in the log only.
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal", "Internal error", "an unexpected error occurred")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HerdError, _herd_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


# What every error answer looks like, for the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` is stable, `detail` says what to do.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above do: FastAPI's
    own document declares 422 as application/json with its own shape, and no
    other error at all, so a client generated from it would misread every
    error Herd sends."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _declare_problems(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_problems(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "The request does not match the schema",
                    "content": content,
                }
            responses["default"] = {"description": "An error (problem details)", "content": content}
