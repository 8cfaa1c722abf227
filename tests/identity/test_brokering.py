"""The organisation's own IdP brokered into its realm: OIDC from a discovery
document, SAML from metadata or from explicit values, with Herd's mappers."""

from __future__ import annotations

import json

import pytest

from controlplane.identity import (
    IdentityError,
    IdentitySpace,
    KeycloakIdentity,
    OidcUpstream,
    SamlUpstream,
)
from tests.identity.standin import KeycloakStandIn

CERT = "MIICmzCCAYMCBgGNc2Vyd2VyMA0GCSqGSIb3DQEBCwUAMBExDzANBgNVBAMMBmFjbWUtaWRw"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
MAIL_OID = "urn:oid:0.9.2342.19200300.100.1.3"
ENTITY = "https://idp.acme.example/saml"


def publish_oidc(keycloak: KeycloakStandIn, issuer_path: str = "acme") -> str:
    issuer = f"{keycloak.url}/upstream/{issuer_path}"
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "end_session_endpoint": f"{issuer}/logout",
    }
    keycloak.publish(
        f"{issuer_path}/.well-known/openid-configuration", json.dumps(document), "application/json"
    )
    return issuer


def publish_saml(
    keycloak: KeycloakStandIn, entity_id: str = "https://idp.acme.example/saml"
) -> str:
    metadata = f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{CERT}</ds:X509Certificate></ds:X509Data>
      </ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>{PERSISTENT}</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://idp.acme.example/sso/redirect"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://idp.acme.example/sso/post"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""
    return keycloak.publish("acme/saml/metadata", metadata, "application/samlmetadata+xml")


def oidc_upstream(issuer: str, **changes: object) -> OidcUpstream:
    values: dict[str, object] = {
        "issuer": issuer,
        "client_id": "keycloak-at-acme",
        "client_secret": "acme-issued-secret",
        "display_name": "Acme staff",
        **changes,
    }
    return OidcUpstream(**values)  # type: ignore[arg-type]


def mappers_by_name(keycloak: KeycloakStandIn, alias: str = "idp") -> dict[str, dict]:
    return {m["name"]: m for m in keycloak.realm("herd-acme").mappers_of(alias)}


def test_an_oidc_idp_is_brokered_from_its_discovery_document_with_mappers(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    issuer = publish_oidc(keycloak)

    endpoints = identity.ensure_identity_provider(space, oidc_upstream(issuer))

    assert (
        endpoints.redirect_uri == "https://sso.provider.test/realms/herd-acme/broker/idp/endpoint"
    )
    assert endpoints.saml_entity_id is None
    idp = keycloak.realm("herd-acme").idps["idp"]
    assert idp["providerId"] == "oidc"
    assert idp["displayName"] == "Acme staff"
    assert idp["enabled"] is True
    assert idp["trustEmail"] is True
    config = idp["config"]
    assert config["issuer"] == issuer
    assert config["authorizationUrl"] == f"{issuer}/authorize"
    assert config["tokenUrl"] == f"{issuer}/token"
    assert config["jwksUrl"] == f"{issuer}/jwks"
    assert config["logoutUrl"] == f"{issuer}/logout"
    assert config["clientId"] == "keycloak-at-acme"
    assert config["clientSecret"] == "acme-issued-secret"
    assert config["defaultScope"] == "openid profile email"
    assert (config["pkceEnabled"], config["pkceMethod"]) == ("true", "S256")
    assert config["syncMode"] == "FORCE"

    mappers = mappers_by_name(keycloak)
    assert set(mappers) == {"herd-username", "herd-email", "herd-first-name", "herd-last-name"}
    assert mappers["herd-username"]["identityProviderMapper"] == "oidc-username-idp-mapper"
    assert mappers["herd-username"]["config"]["template"] == "${CLAIM.preferred_username}"
    assert mappers["herd-email"]["identityProviderMapper"] == "oidc-user-attribute-idp-mapper"
    assert mappers["herd-email"]["config"]["claim"] == "email"
    assert mappers["herd-email"]["config"]["user.attribute"] == "email"
    assert mappers["herd-first-name"]["config"] == {
        "claim": "given_name",
        "user.attribute": "firstName",
        "syncMode": "INHERIT",
    }
    assert mappers["herd-last-name"]["config"]["user.attribute"] == "lastName"


def test_ensuring_the_idp_again_creates_nothing_and_keeps_operator_mappers(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    upstream = oidc_upstream(publish_oidc(keycloak))
    identity.ensure_identity_provider(space, upstream)
    realm = keycloak.realm("herd-acme")
    realm.mappers["operator"] = {
        "id": "operator",
        "name": "department",
        "identityProviderAlias": "idp",
        "identityProviderMapper": "oidc-user-attribute-idp-mapper",
        "config": {"claim": "dept", "user.attribute": "department"},
    }
    writes = len(keycloak.writes())

    identity.ensure_identity_provider(space, upstream)

    # The provider is rewritten whole (its secret cannot be read back to
    # compare); nothing is created.
    assert keycloak.writes()[writes:] == [
        ("PUT", "/admin/realms/herd-acme/identity-provider/instances/idp")
    ]
    assert list(realm.idps) == ["idp"]
    assert len(realm.mappers) == 5
    assert "department" in mappers_by_name(keycloak)


def test_a_changed_client_secret_and_a_drifted_mapper_are_corrected(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    issuer = publish_oidc(keycloak)
    identity.ensure_identity_provider(space, oidc_upstream(issuer))
    email = mappers_by_name(keycloak)["herd-email"]
    email["config"]["claim"] = "mail"

    identity.ensure_identity_provider(space, oidc_upstream(issuer, client_secret="rotated-at-acme"))

    assert keycloak.realm("herd-acme").idps["idp"]["config"]["clientSecret"] == "rotated-at-acme"
    assert mappers_by_name(keycloak)["herd-email"]["config"]["claim"] == "email"
    assert len(keycloak.realm("herd-acme").mappers) == 4


def test_a_discovery_document_for_another_issuer_is_refused(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    issuer = publish_oidc(keycloak)
    upstream = oidc_upstream(
        "https://login.acme.example", discovery_url=f"{issuer}/.well-known/openid-configuration"
    )
    with pytest.raises(IdentityError, match="names issuer"):
        identity.ensure_identity_provider(space, upstream)
    assert keycloak.realm("herd-acme").idps == {}


def test_a_discovery_document_keycloak_cannot_read_is_an_identity_error(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    with pytest.raises(IdentityError):
        identity.ensure_identity_provider(space, oidc_upstream(f"{keycloak.url}/upstream/none"))


def test_a_saml_idp_is_brokered_from_its_metadata(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    upstream = SamlUpstream(
        metadata_url=publish_saml(keycloak),
        entity_id="https://idp.acme.example/saml",
        display_name="Acme ADFS",
    )

    endpoints = identity.ensure_identity_provider(space, upstream)

    issuer = "https://sso.provider.test/realms/herd-acme"
    assert endpoints.redirect_uri == f"{issuer}/broker/idp/endpoint"
    assert endpoints.saml_entity_id == issuer
    assert endpoints.saml_metadata_url == f"{issuer}/broker/idp/endpoint/descriptor"
    idp = keycloak.realm("herd-acme").idps["idp"]
    assert idp["providerId"] == "saml"
    config = idp["config"]
    assert config["idpEntityId"] == "https://idp.acme.example/saml"
    assert config["singleSignOnServiceUrl"] == "https://idp.acme.example/sso/post"
    assert config["postBindingAuthnRequest"] == "true"
    assert config["signingCertificate"] == CERT
    assert config["validateSignature"] == "true"
    assert config["nameIDPolicyFormat"] == PERSISTENT
    assert config["entityId"] == issuer
    assert config["principalType"] == "SUBJECT"

    mappers = mappers_by_name(keycloak)
    assert mappers["herd-username"]["identityProviderMapper"] == "saml-username-idp-mapper"
    assert mappers["herd-username"]["config"]["template"] == (
        "${ATTRIBUTE.urn:oid:0.9.2342.19200300.100.1.1}"
    )
    assert mappers["herd-email"]["identityProviderMapper"] == "saml-user-attribute-idp-mapper"
    assert mappers["herd-email"]["config"]["attribute.name"] == MAIL_OID
    assert mappers["herd-email"]["config"]["user.attribute"] == "email"
    assert mappers["herd-last-name"]["config"]["attribute.name"] == "urn:oid:2.5.4.4"


def test_a_saml_idp_without_metadata_takes_explicit_values(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    upstream = SamlUpstream(
        entity_id="https://idp.acme.example/saml",
        single_sign_on_url="https://idp.acme.example/sso/post",
        signing_certificate=CERT,
        alias="acme-saml",
    )

    identity.ensure_identity_provider(space, upstream)

    config = keycloak.realm("herd-acme").idps["acme-saml"]["config"]
    assert config["idpEntityId"] == "https://idp.acme.example/saml"
    assert config["singleSignOnServiceUrl"] == "https://idp.acme.example/sso/post"
    assert config["postBindingResponse"] == "true"
    assert config["nameIDPolicyFormat"] == PERSISTENT
    assert config["signingCertificate"] == CERT
    assert len(mappers_by_name(keycloak, "acme-saml")) == 4


def test_saml_metadata_for_another_entity_is_refused(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    upstream = SamlUpstream(
        metadata_url=publish_saml(keycloak), entity_id="https://idp.globex.example/saml"
    )
    with pytest.raises(IdentityError, match="describes entity"):
        identity.ensure_identity_provider(space, upstream)


def test_switching_an_alias_from_oidc_to_saml_replaces_provider_and_mappers(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    identity.ensure_identity_provider(space, oidc_upstream(publish_oidc(keycloak)))
    identity.ensure_identity_provider(space, SamlUpstream(metadata_url=publish_saml(keycloak)))

    realm = keycloak.realm("herd-acme")
    assert realm.idps["idp"]["providerId"] == "saml"
    assert "clientSecret" not in realm.idps["idp"]["config"]
    assert {m["identityProviderMapper"] for m in realm.mappers.values()} == {
        "saml-username-idp-mapper",
        "saml-user-attribute-idp-mapper",
    }
    assert len(realm.mappers) == 4


def test_removing_the_idp_twice_is_fine(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    identity.ensure_identity_provider(space, oidc_upstream(publish_oidc(keycloak)))
    assert identity.remove_identity_provider(space, "idp") is True
    assert identity.remove_identity_provider(space, "idp") is False
    realm = keycloak.realm("herd-acme")
    assert realm.idps == {}
    assert realm.mappers == {}


def test_upstream_specs_refuse_what_keycloak_or_mastodon_could_not_use() -> None:
    with pytest.raises(ValueError, match="alias"):
        OidcUpstream(issuer="https://x.example", client_id="a", client_secret="b", alias="A/B")
    with pytest.raises(ValueError, match="openid"):
        OidcUpstream(
            issuer="https://x.example", client_id="a", client_secret="b", scopes=("profile",)
        )
    with pytest.raises(ValueError, match="metadata_url"):
        SamlUpstream(entity_id="https://idp.example/saml")
    upstream = OidcUpstream(issuer="https://x.example/", client_id="a", client_secret="hidden")
    assert "hidden" not in repr(upstream)
    assert upstream.resolved_discovery_url == "https://x.example/.well-known/openid-configuration"
