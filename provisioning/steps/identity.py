"""Steps that bring a server's single sign-on to its organisation's choice:
its OIDC client in Keycloak, the secret recorded, the sso playbook run, and a
client removed when SSO is off or the server goes.

Each step reads the desired state (controlplane.identity.service.desired)
instead of being told on or off, and each finds what exists before it makes
anything, so a repeated or resumed run converges without a second client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from controlplane.identity import IdentityError, IdentityUnavailable
from controlplane.identity import service as sso
from controlplane.identity.models import ServerSso
from provisioning.pipeline import Step, StepContext, StepFailed, StepRetry
from provisioning.steps.runs import server_of


@contextmanager
def _keycloak() -> Iterator[None]:
    try:
        yield
    except IdentityUnavailable as exc:
        raise StepRetry(str(exc)) from exc
    except IdentityError as exc:
        # Refused credentials, a realm Herd does not own: a person must act.
        raise StepFailed(str(exc)) from exc


def prepare_identity(context: StepContext) -> dict[str, Any]:
    """The server's client and its secret, when SSO is wanted; otherwise
    nothing (a client to remove goes after the deploy, in retire_identity)."""
    with context.session() as session:
        server = server_of(session, context)
        config = sso.desired(session, server)
        if config is None:
            return {"skipped": "single sign-on is off for this server's organisation"}
        with _keycloak():
            row = sso.converge_client(session, server, config)
        # At once: the secret the next step deploys must be the one recorded.
        session.commit()
        return {"realm": row.realm, "client_id": row.client_id}


def retire_identity(context: StepContext) -> dict[str, Any]:
    """After the deploy: with SSO wanted, end a rotated secret's grace period;
    with SSO off, delete the client (the server no longer offers it)."""
    with context.session() as session:
        server = server_of(session, context)
        with _keycloak():
            if sso.desired(session, server) is not None:
                if session.get(ServerSso, server.id) is not None:
                    sso.retire_previous_secret(session, server)
                return {"client": "kept"}
            existed = sso.remove_client(session, server)
        session.commit()
        return {"client": "deleted" if existed else "none"}


def rotate_secret(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        if sso.desired(session, server) is None:
            raise StepFailed("single sign-on is off for this server: nothing to rotate")
        with _keycloak():
            previous_valid = sso.rotate_secret(session, server)
        session.commit()
    return {"previous_secret_valid_until": previous_valid}


def remove_identity(context: StepContext) -> dict[str, Any]:
    """Deprovisioning: the server's client goes, whatever the organisation chose."""
    with context.session() as session:
        server = server_of(session, context)
        with _keycloak():
            existed = sso.remove_client(session, server)
        session.commit()
    return {"client": "deleted" if existed else "none"}


def _step(name: str, run: Callable[[StepContext], dict[str, Any]]) -> Step:
    # Keycloak being down is worth waiting out for a while.
    return Step(name, run, attempts=6, backoff_seconds=10)


PREPARE_IDENTITY = _step("prepare_identity", prepare_identity)
RETIRE_IDENTITY = _step("retire_identity", retire_identity)
REMOVE_IDENTITY = _step("remove_identity", remove_identity)
ROTATE_SECRET = Step("rotate_secret", rotate_secret, attempts=3, backoff_seconds=10)
