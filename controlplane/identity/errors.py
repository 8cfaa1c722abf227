"""Herd's own identity exceptions, and the one place python-keycloak's errors
are translated into them.

Nothing outside this package catches a `keycloak` exception. Callers branch on
two kinds only: `IdentityUnavailable` (Keycloak did not answer, or answered
that it is overloaded or broken: try again later) and every other
`IdentityError` (Keycloak refused what Herd asked: retrying will not help until
someone changes the request, the credentials or Keycloak's configuration).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from controlplane.problems import HerdError


class IdentityError(HerdError):
    """Keycloak refused a request, or answered something Herd cannot use."""

    status, kind, title = 502, "identity-error", "Identity provider error"

    def __init__(self, detail: str, *, keycloak_status: int | None = None) -> None:
        extra = {} if keycloak_status is None else {"keycloak_status": keycloak_status}
        super().__init__(detail, **extra)
        self.keycloak_status = keycloak_status


class IdentityUnavailable(IdentityError):
    """Keycloak could not be reached or is failing; the same call may succeed later."""

    status, kind, title = 503, "identity-unavailable", "Identity provider unavailable"


# 429 and every 5xx say "not now" rather than "not this": a provisioning step
# that meets one retries with backoff instead of failing the job.
def _is_transient(status: int | None) -> bool:
    return status is not None and (status == 429 or status >= 500)


def _message(exc: KeycloakError) -> str:
    message = exc.error_message
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return str(message)[:300]


def translate(exc: Exception, doing: str) -> IdentityError:
    """The Herd exception for a python-keycloak (or malformed-answer) failure.

    `doing` finishes the sentence "Keycloak failed while ...". Messages name
    realms, client ids and aliases, never a secret: Keycloak's own error texts
    do not echo secrets, and Herd never puts one in `doing`.
    """
    if isinstance(exc, KeycloakConnectionError):
        return IdentityUnavailable(f"Keycloak did not answer while {doing}")
    if isinstance(exc, KeycloakError):
        status = exc.response_code
        if status == 401:
            return IdentityError(
                f"Keycloak refused Herd's admin credentials while {doing}; "
                "check HERD_KEYCLOAK_ADMIN_*",
                keycloak_status=status,
            )
        if status == 403:
            return IdentityError(
                f"Herd's Keycloak account lacks the role needed for {doing}",
                keycloak_status=status,
            )
        detail = f"Keycloak answered {status} while {doing}: {_message(exc)}"
        if _is_transient(status):
            return IdentityUnavailable(detail, keycloak_status=status)
        return IdentityError(detail, keycloak_status=status)
    # python-keycloak raises TypeError when a 2xx body has the wrong shape
    # (a proxy's HTML page, say); that is Keycloak answering nonsense.
    return IdentityError(f"Keycloak gave an unexpected answer while {doing}: {exc}")


@contextmanager
def keycloak_errors(doing: str) -> Iterator[None]:
    """Run a block of python-keycloak calls, raising only Herd exceptions."""
    try:
        yield
    except IdentityError:
        raise
    except (KeycloakError, TypeError) as exc:
        raise translate(exc, doing) from exc


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a python-keycloak error, for the 404/409 branches
    that idempotent operations take before translation."""
    return exc.response_code if isinstance(exc, KeycloakError) else None
