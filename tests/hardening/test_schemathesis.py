"""Schemathesis against a running Herd: for every operation in its OpenAPI
document, generated requests (valid ones and deliberately invalid ones) as a
staff admin and as an organisation's owner. No answer may be a 5xx, and every
answer must match what the document declares: status code, content type
(errors are application/problem+json) and body schema.

Bounded for CI: HERD_SCHEMATHESIS_EXAMPLES examples per operation and mode
(default 5), with path ids drawn both at random and from real rows, so the
handlers behind the 404s are reached too. Runs on PostgreSQL
(HERD_SCHEMATHESIS_DB=sqlite for the embedded database)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from sqlalchemy.engine import Engine

from tests.factories import World, build_world

EXAMPLES = int(os.environ.get("HERD_SCHEMATHESIS_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Path parameter name -> the world's row of that kind, so generated requests
# also hit resources that exist.
REAL_IDS = {
    "org_id": "org",
    "server_id": "server",
    "job_id": "finished_job",
    "host_id": "host",
    "plan_id": "plan",
    "user_id": "spare_user",
    "token_id": "org_token",
    "invitation_id": "invitation",
}


@pytest.fixture
def db_kind() -> str:
    # One database: the whole run takes minutes, and the answers' shapes do
    # not depend on the backend (every other functional test runs on both).
    return os.environ.get("HERD_SCHEMATHESIS_DB", "postgresql")


def _fuzz(operation: Any, strategy: Any, base: str, headers: dict[str, str]) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)

    run()


def _strategies(operation: Any, world: World) -> list[tuple[str, Any]]:
    real = {
        name: str(world.ids[kind])
        for name, kind in REAL_IDS.items()
        if any(p.name == name for p in operation.path_parameters)
    }
    strategies: list[tuple[str, Any]] = [
        ("positive", operation.as_strategy(GenerationMode.POSITIVE)),
        ("negative", operation.as_strategy(GenerationMode.NEGATIVE)),
    ]
    if real and len(real) == len(list(operation.path_parameters)):
        strategies.append(
            (
                "positive, real ids",
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real),
            )
        )
    return strategies


@pytest.mark.slow
def test_every_answer_matches_the_document(live_server: str, engine: Engine) -> None:
    world = build_world(engine)
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    callers: dict[str, Callable[[], dict[str, str]]] = {
        "staff_admin": lambda: world.headers("staff_admin"),
        "owner": lambda: world.headers("owner"),
    }
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        for caller, headers in callers.items():
            for mode, strategy in _strategies(operation, world):
                try:
                    _fuzz(operation, strategy, live_server, headers())
                except Unsatisfiable:
                    # Nothing invalid can be said to this operation in this
                    # mode (no parameters, no body): nothing to test.
                    continue
                except (FailureGroup, AssertionError) as exc:  # all of them, then report
                    failures.append(f"{label} as {caller} ({mode}): {exc}")
    assert not failures, "\n\n".join(failures)
