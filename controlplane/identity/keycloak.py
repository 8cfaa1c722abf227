"""Herd's narrow interface to Keycloak's admin API: each organisation's realm,
its branding, one OIDC client per Mastodon server and that client's secret.
Identity brokering (the organisation's own IdP) is in `brokering.py`.

Every operation is idempotent and converges: it reads what Keycloak holds,
creates what is missing and corrects what drifted, and a 409 on create means a
concurrent or earlier run got there first, so it finds that one and goes on.
A worker killed between creating a client and storing its secret therefore
finds the same client on the next run (by its clientId, which is derived from
the server's id) instead of creating a second one.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from keycloak import KeycloakAdmin, urls_patterns
from keycloak.exceptions import KeycloakError, KeycloakGetError, raise_error_from_response

from controlplane.identity import brokering
from controlplane.identity import representations as reps
from controlplane.identity.errors import IdentityError, keycloak_errors, status_of
from controlplane.identity.settings import IdentitySettings
from controlplane.identity.specs import (
    Branding,
    BrokerEndpoints,
    IdentitySpace,
    SecretRotation,
    ServerClient,
    Upstream,
)

# The client attribute where Keycloak's secret-rotation policy keeps the
# previous secret's end of life (epoch seconds).
ROTATED_SECRET_EXPIRY = "client.secret.rotated.expiration.time"  # noqa: S105 - a name


class KeycloakIdentity:
    """One admin API client per service instance, safe to share between threads.

    python-keycloak addresses the realm it was last pointed at, so each
    operation holds a lock while it points the client at a realm and works
    there. Admin operations are rare next to the rest of Herd's work, and the
    lock keeps one token and one connection pool for the whole process.
    """

    def __init__(self, settings: IdentitySettings | None = None) -> None:
        self.settings = settings or IdentitySettings()
        if not self.settings.configured:
            raise IdentityError(
                "Keycloak is not configured: set HERD_KEYCLOAK_URL and either "
                "HERD_KEYCLOAK_ADMIN_CLIENT_SECRET or HERD_KEYCLOAK_ADMIN_USERNAME/_PASSWORD"
            )
        s = self.settings
        by_client = s.admin_client_secret is not None and s.admin_password is None
        # The token is fetched lazily, on the first call, and renewed by
        # python-keycloak before it expires; nothing here touches the network.
        self._admin = KeycloakAdmin(
            server_url=s.url,
            grant_type="client_credentials" if by_client else "password",
            username=None if by_client else s.admin_username,
            password=None if by_client else s.admin_password,
            client_id=s.admin_client_id,
            client_secret_key=s.admin_client_secret,
            realm_name=s.admin_realm,
            user_realm_name=s.admin_realm,
            verify=s.verify,
            timeout=s.timeout_seconds,
        )
        self._lock = threading.Lock()

    @contextmanager
    def _in_realm(self, realm: str, doing: str) -> Iterator[KeycloakAdmin]:
        with self._lock, keycloak_errors(doing):
            self._admin.change_current_realm(realm)
            yield self._admin

    # -- the organisation's realm -------------------------------------------

    def space_for(self, organisation_id: uuid.UUID, slug: str) -> IdentitySpace:
        """Where an organisation lives in Keycloak; computed, not looked up."""
        realm = reps.realm_name(self.settings.realm_prefix, slug)
        return IdentitySpace(organisation_id, realm, reps.issuer(self.settings.issuer_base, realm))

    def ensure_space(
        self, *, organisation_id: uuid.UUID, slug: str, branding: Branding
    ) -> IdentitySpace:
        """Create the organisation's realm, or bring an existing one's branding
        up to date. Refuses a realm of that name that Herd did not create for
        this organisation."""
        space = self.space_for(organisation_id, slug)
        desired = reps.realm_representation(
            space.realm, organisation_id, branding, self.settings.login_theme
        )
        with self._in_realm(space.realm, f"ensuring realm {space.realm}") as admin:
            current = _get_realm(admin, space.realm)
            if current is None:
                try:
                    admin.create_realm(desired)
                except KeycloakError as exc:
                    if status_of(exc) != 409:
                        raise
                current = _get_realm(admin, space.realm)
                if current is None:
                    raise IdentityError(f"realm {space.realm} vanished right after creation")
            _check_owner(current, space)
            _update_branding(admin, current, desired)
        return space

    def apply_branding(self, space: IdentitySpace, branding: Branding) -> None:
        desired = reps.branding_fields(branding, self.settings.login_theme)
        with self._in_realm(space.realm, f"branding realm {space.realm}") as admin:
            current = _get_realm(admin, space.realm)
            if current is None:
                raise IdentityError(f"realm {space.realm} does not exist", keycloak_status=404)
            _check_owner(current, space)
            _update_branding(admin, current, desired)

    def delete_space(self, space: IdentitySpace) -> bool:
        """Delete the realm with everyone in it. False if it was already gone."""
        with self._in_realm(space.realm, f"deleting realm {space.realm}") as admin:
            current = _get_realm(admin, space.realm)
            if current is None:
                return False
            _check_owner(current, space)
            try:
                admin.delete_realm(space.realm)
            except KeycloakError as exc:
                if status_of(exc) != 404:
                    raise
                return False
        return True

    # -- one OIDC client per Mastodon server ------------------------------

    def ensure_server_client(
        self, space: IdentitySpace, *, server_id: uuid.UUID, domain: str
    ) -> ServerClient:
        """The server's confidential client, created once and kept as Herd
        wants it (redirect URI, standard flow only, PKCE S256)."""
        desired = reps.client_representation(server_id, reps.check_domain(domain))
        client_id = desired["clientId"]
        with self._in_realm(space.realm, f"ensuring client {client_id}") as admin:
            current = _find_client(admin, space.realm, client_id)
            if current is None:
                try:
                    internal_id = admin.create_client(desired)
                except KeycloakError as exc:
                    if status_of(exc) != 409:
                        raise
                    current = _find_client(admin, space.realm, client_id)
                    if current is None:
                        raise IdentityError(
                            f"client {client_id} conflicts yet cannot be found"
                        ) from exc
            if current is not None:
                _check_server(current, server_id)
                internal_id = current["id"]
                drift = reps.client_drift(current, desired)
                if drift:
                    admin.update_client(internal_id, drift)
        return ServerClient(server_id, client_id, internal_id, domain, reps.redirect_uri(domain))

    def client_secret(self, space: IdentitySpace, server_id: uuid.UUID) -> str:
        """The secret Keycloak holds now; deploy steps read it here each time,
        so a rotation interrupted before its deploy still converges."""
        client_id = reps.client_id_for(server_id)
        with self._in_realm(space.realm, f"reading the secret of {client_id}") as admin:
            current = _require_client(admin, space.realm, client_id)
            secret = admin.get_client_secrets(current["id"]).get("value")
        if not secret:
            raise IdentityError(f"Keycloak holds no secret for {client_id}")
        return secret

    def rotate_client_secret(self, space: IdentitySpace, server_id: uuid.UUID) -> SecretRotation:
        """Have Keycloak generate a new secret and return it.

        Keycloak keeps one secret per client: unless the realm applies a
        client policy with the secret-rotation executor, the old secret stops
        working at once, and sign-ins fail until the server runs with the new
        one (people already signed in are not affected). Run this as its own
        checkpointed step, then deploy what `client_secret` returns, then call
        `retire_previous_secret`. See README.md, "Rotating a client secret".
        """
        client_id = reps.client_id_for(server_id)
        with self._in_realm(space.realm, f"rotating the secret of {client_id}") as admin:
            current = _require_client(admin, space.realm, client_id)
            secret = admin.generate_client_secrets(current["id"]).get("value")
            after = admin.get_client(current["id"])
        if not secret:
            raise IdentityError(f"Keycloak generated no secret for {client_id}")
        expiry = str((after.get("attributes") or {}).get(ROTATED_SECRET_EXPIRY, ""))
        until = datetime.fromtimestamp(int(expiry), UTC) if expiry.isdigit() else None
        return SecretRotation(secret, until)

    def retire_previous_secret(self, space: IdentitySpace, server_id: uuid.UUID) -> None:
        """End the grace period of a rotated secret (a no-op without one)."""
        client_id = reps.client_id_for(server_id)
        with self._in_realm(space.realm, f"retiring the old secret of {client_id}") as admin:
            current = _require_client(admin, space.realm, client_id)
            path = urls_patterns.URL_ADMIN_CLIENT_SECRETS.format(
                **{"realm-name": space.realm, "id": current["id"]}
            )
            response = admin.connection.raw_delete(path + "/rotated")
            if response.status_code != 404:
                raise_error_from_response(response, KeycloakError, expected_codes=[204])

    def delete_server_client(self, space: IdentitySpace, server_id: uuid.UUID) -> bool:
        """Remove the server's client. False if there was none (or no realm)."""
        client_id = reps.client_id_for(server_id)
        with self._in_realm(space.realm, f"deleting client {client_id}") as admin:
            try:
                current = _find_client(admin, space.realm, client_id)
            except KeycloakError as exc:
                if status_of(exc) == 404:  # the realm itself is gone
                    return False
                raise
            if current is None:
                return False
            _check_server(current, server_id)
            try:
                admin.delete_client(current["id"])
            except KeycloakError as exc:
                if status_of(exc) != 404:
                    raise
                return False
        return True

    # -- the organisation's own identity provider --------------------------

    def ensure_identity_provider(self, space: IdentitySpace, upstream: Upstream) -> BrokerEndpoints:
        """Broker the organisation's OIDC or SAML IdP into its realm, with
        Herd's attribute mappers; returns what the IdP must be told."""
        doing = f"ensuring identity provider {upstream.alias} in {space.realm}"
        with self._in_realm(space.realm, doing) as admin:
            brokering.ensure(admin, space, upstream)
        return brokering.endpoints(space, upstream)

    def remove_identity_provider(self, space: IdentitySpace, alias: str) -> bool:
        doing = f"removing identity provider {alias} from {space.realm}"
        with self._in_realm(space.realm, doing) as admin:
            return brokering.remove(admin, alias)


@lru_cache
def get_identity() -> KeycloakIdentity:
    """The process's one Keycloak client, from HERD_KEYCLOAK_* settings."""
    return KeycloakIdentity()


def _get_realm(admin: KeycloakAdmin, realm: str) -> dict[str, Any] | None:
    try:
        return admin.get_realm(realm)
    except KeycloakError as exc:
        if status_of(exc) == 404:
            return None
        raise


def _check_owner(current: dict[str, Any], space: IdentitySpace) -> None:
    owner = (current.get("attributes") or {}).get(reps.ORGANISATION_ATTRIBUTE)
    if owner != str(space.organisation_id):
        raise IdentityError(
            f"realm {space.realm} exists but was not made by Herd for organisation "
            f"{space.organisation_id}; rename or remove it, or set its attribute "
            f"{reps.ORGANISATION_ATTRIBUTE} to adopt it"
        )


def _update_branding(
    admin: KeycloakAdmin, current: dict[str, Any], desired: dict[str, Any]
) -> None:
    drift = {
        key: desired[key]
        for key in ("displayName", "loginTheme")
        if (current.get(key) or "") != desired[key]
    }
    if drift:
        admin.update_realm(current["realm"], drift)


def _find_client(admin: KeycloakAdmin, realm: str, client_id: str) -> dict[str, Any] | None:
    # GET .../clients?clientId=X matches exactly and answers the full
    # representation, so one request finds the client and shows its state.
    path = urls_patterns.URL_ADMIN_CLIENTS.format(**{"realm-name": realm})
    found = raise_error_from_response(
        admin.connection.raw_get(path, clientId=client_id), KeycloakGetError
    )
    if not isinstance(found, list):
        raise TypeError(f"expected a list of clients, got {json.dumps(found)[:100]}")
    return next((c for c in found if c.get("clientId") == client_id), None)


def _require_client(admin: KeycloakAdmin, realm: str, client_id: str) -> dict[str, Any]:
    current = _find_client(admin, realm, client_id)
    if current is None:
        raise IdentityError(f"client {client_id} does not exist in {realm}", keycloak_status=404)
    return current


def _check_server(current: dict[str, Any], server_id: uuid.UUID) -> None:
    owner = (current.get("attributes") or {}).get(reps.SERVER_ATTRIBUTE)
    if owner != str(server_id):
        raise IdentityError(
            f"client {current.get('clientId')} exists but was not made by Herd for "
            f"server {server_id}"
        )
