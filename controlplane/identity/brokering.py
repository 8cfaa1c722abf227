"""Identity brokering: the organisation's own OIDC or SAML IdP in its realm.

Called by `KeycloakIdentity` with the admin client already pointed at the
realm (and its errors translated there). Keycloak itself reads the IdP's
discovery document or SAML metadata (`import-config`, as its admin console
does), so the endpoints and certificates it uses are the ones it can reach.
"""

from __future__ import annotations

import json
from typing import Any

from keycloak import KeycloakAdmin, urls_patterns
from keycloak.exceptions import KeycloakError, KeycloakPostError, raise_error_from_response

from controlplane.identity import representations as reps
from controlplane.identity.errors import IdentityError, status_of
from controlplane.identity.specs import (
    BrokerEndpoints,
    IdentitySpace,
    OidcUpstream,
    SamlUpstream,
    Upstream,
)

IMPORT_CONFIG = "admin/realms/{realm}/identity-provider/import-config"


def endpoints(space: IdentitySpace, upstream: Upstream) -> BrokerEndpoints:
    endpoint = reps.broker_endpoint(space, upstream.alias)
    if isinstance(upstream, OidcUpstream):
        return BrokerEndpoints(upstream.alias, endpoint)
    return BrokerEndpoints(upstream.alias, endpoint, space.issuer, endpoint + "/descriptor")


def ensure(admin: KeycloakAdmin, space: IdentitySpace, upstream: Upstream) -> None:
    desired = reps.identity_provider_representation(
        space, upstream, _imported_config(admin, space.realm, upstream)
    )
    _upsert(admin, desired)
    _sync_mappers(admin, upstream)


def remove(admin: KeycloakAdmin, alias: str) -> bool:
    try:
        admin.delete_idp(alias)
    except KeycloakError as exc:
        if status_of(exc) == 404:
            return False
        raise
    return True


def _imported_config(admin: KeycloakAdmin, realm: str, upstream: Upstream) -> dict[str, str]:
    if isinstance(upstream, OidcUpstream):
        config = _import(admin, realm, "oidc", upstream.resolved_discovery_url)
        # OIDC discovery requires the document's issuer to be the one asked
        # for; a mismatch is a typo or a document from somewhere else.
        if config.get("issuer", "").rstrip("/") != upstream.issuer.rstrip("/"):
            raise IdentityError(
                f"the discovery document names issuer {config.get('issuer')!r}, "
                f"not {upstream.issuer!r}"
            )
        return config
    if upstream.metadata_url is None:
        return {}
    config = _import(admin, realm, "saml", upstream.metadata_url)
    _check_saml(config, upstream)
    return config


def _import(admin: KeycloakAdmin, realm: str, provider_id: str, url: str) -> dict[str, str]:
    # python-keycloak has no wrapper for import-config; its connection still
    # carries the token and the error handling.
    response = admin.connection.raw_post(
        IMPORT_CONFIG.format(realm=realm),
        data=json.dumps({"providerId": provider_id, "fromUrl": url}),
    )
    config = raise_error_from_response(response, KeycloakPostError, expected_codes=[200])
    if not isinstance(config, dict) or not config:
        raise IdentityError(f"Keycloak found no {provider_id} configuration at {url}")
    return {str(k): str(v) for k, v in config.items()}


def _check_saml(config: dict[str, str], upstream: SamlUpstream) -> None:
    if not config.get("singleSignOnServiceUrl"):
        raise IdentityError(f"the SAML metadata at {upstream.metadata_url} has no IdP SSO service")
    if upstream.entity_id and config.get("idpEntityId") != upstream.entity_id:
        raise IdentityError(
            f"the SAML metadata describes entity {config.get('idpEntityId')!r}, "
            f"not {upstream.entity_id!r}"
        )


def _upsert(admin: KeycloakAdmin, desired: dict[str, Any]) -> None:
    alias = desired["alias"]
    current = _get(admin, alias)
    if current is not None and current.get("providerId") != desired["providerId"]:
        # Switching between OIDC and SAML: the mappers are typed by protocol,
        # so the provider goes and comes back rather than being edited.
        remove(admin, alias)
        current = None
    if current is None:
        try:
            admin.create_idp(desired)
            return
        except KeycloakError as exc:
            if status_of(exc) != 409:
                raise
    # Keycloak's PUT replaces the provider outright and reads always show the
    # client secret masked, so Herd cannot tell whether it drifted: it sends
    # the whole provider, secret included, on every run.
    admin.update_idp(alias, desired)


def _get(admin: KeycloakAdmin, alias: str) -> dict[str, Any] | None:
    try:
        return admin.get_idp(alias)
    except KeycloakError as exc:
        if status_of(exc) == 404:
            return None
        raise


def _sync_mappers(admin: KeycloakAdmin, upstream: Upstream) -> None:
    """Create Herd's mappers that are missing, correct those that drifted, and
    drop Herd mappers no longer wanted; mappers an operator added stay."""
    current = {m.get("name"): m for m in admin.get_idp_mappers(upstream.alias)}
    wanted = reps.mapper_representations(upstream)
    for mapper in wanted:
        existing = current.get(mapper["name"])
        if existing is None:
            admin.add_mapper_to_idp(upstream.alias, mapper)
        elif (
            existing.get("identityProviderMapper") != mapper["identityProviderMapper"]
            or existing.get("config") != mapper["config"]
        ):
            # The update writes the mapper named by the body's id, not the
            # path's, so the body carries it.
            admin.update_mapper_in_idp(
                upstream.alias, existing["id"], {**mapper, "id": existing["id"]}
            )
    names = {m["name"] for m in wanted}
    for name, existing in current.items():
        if str(name).startswith(reps.MAPPER_PREFIX) and name not in names:
            _delete_mapper(admin, upstream.alias, existing["id"])


def _delete_mapper(admin: KeycloakAdmin, alias: str, mapper_id: str) -> None:
    # python-keycloak can update an IdP mapper but not delete one.
    path = urls_patterns.URL_ADMIN_IDP_MAPPER_UPDATE.format(
        **{"realm-name": admin.connection.realm_name, "idp-alias": alias, "mapper-id": mapper_id}
    )
    response = admin.connection.raw_delete(path)
    if response.status_code != 404:
        raise_error_from_response(response, KeycloakError, expected_codes=[204])
