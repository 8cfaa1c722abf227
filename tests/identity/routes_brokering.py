"""The stand-in's identity brokering routes: identity providers, their
mappers, and import-config (Keycloak reading a discovery document or SAML
metadata). Registered into `routes.ROUTES` when imported."""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

from tests.identity.routes import NOT_FOUND, realm_of, route, strict
from tests.identity.standin import Answer, KeycloakStandIn, Realm, Request

MASKED = "**********"
IDP_FIELDS = {
    "alias", "displayName", "internalId", "providerId", "enabled", "trustEmail", "storeToken",
    "addReadTokenRoleOnCreate", "authenticateByDefault", "linkOnly", "hideOnLogin",
    "firstBrokerLoginFlowAlias", "postBrokerLoginFlowAlias", "organizationId",
    "updateProfileFirstLoginMode", "config", "types",
}  # fmt: skip
MAPPER_FIELDS = {"id", "name", "identityProviderAlias", "identityProviderMapper", "config"}
PROVIDERS = {"oidc", "keycloak-oidc", "saml"}
# The flows every new realm is created with.
BUILT_IN_FLOWS = {
    "browser", "direct grant", "registration", "reset credentials", "clients",
    "first broker login", "docker auth",
}  # fmt: skip
OIDC_TYPES = [
    "USER_AUTHENTICATION", "CLIENT_ASSERTION", "EXCHANGE_EXTERNAL_TOKEN",
    "JWT_AUTHORIZATION_GRANT", "TOKEN_EXCHANGE",
]  # fmt: skip


# -- identity providers ---------------------------------------------------------

IDP = r"/admin/realms/(?P<realm>[^/]+)/identity-provider/instances/(?P<alias>[^/]+)"


def idp_view(idp: dict[str, Any]) -> dict[str, Any]:
    view = {**idp, "config": dict(idp["config"])}
    if "clientSecret" in view["config"]:
        view["config"]["clientSecret"] = MASKED
    view["types"] = OIDC_TYPES if idp["providerId"] != "saml" else ["USER_AUTHENTICATION"]
    return view


def idp_of(realm: Realm, match: re.Match[str]) -> dict[str, Any]:
    idp = realm.idps.get(match["alias"])
    if idp is None:
        raise NOT_FOUND
    return idp


def checked_idp(rep: Any) -> dict[str, Any]:
    rep = strict(rep, IDP_FIELDS, "IdentityProviderRepresentation")
    if not rep.get("alias"):
        raise Answer(400, {"errorMessage": "path is null"})
    if rep.get("providerId") not in PROVIDERS:
        raise Answer(
            400, {"errorMessage": f"Invalid identity provider id [{rep.get('providerId')}]"}
        )
    flow = rep.get("firstBrokerLoginFlowAlias")
    if flow and flow not in BUILT_IN_FLOWS:
        raise Answer(400, {"errorMessage": f"No available authentication flow with alias: {flow}"})
    rep.pop("types", None)
    rep.setdefault("enabled", True)
    rep["config"] = dict(rep.get("config") or {})
    return rep


@route("GET", r"/admin/realms/(?P<realm>[^/]+)/identity-provider/instances")
def list_idps(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    return Answer(200, [idp_view(realm.idps[a]) for a in sorted(realm.idps)])


@route("POST", r"/admin/realms/(?P<realm>[^/]+)/identity-provider/instances")
def create_idp(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    rep = checked_idp(request.json())
    alias = rep["alias"]
    if alias in realm.idps:
        return Answer(409, {"errorMessage": f"Identity Provider {alias} already exists"})
    rep.setdefault("internalId", str(uuid.uuid4()))
    realm.idps[alias] = rep
    location = f"{base}/admin/realms/{realm.name}/identity-provider/instances/{alias}"
    return Answer(201, None, {"Location": location})


@route("GET", IDP)
def get_idp(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    return Answer(200, idp_view(idp_of(realm_of(standin, m), m)))


@route("PUT", IDP)
def update_idp(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    rep = checked_idp(request.json())
    current = idp_of(realm, m)
    if rep["alias"] != current["alias"]:
        return Answer(400, {"errorMessage": "Identity Provider alias cannot be changed"})
    # The whole provider is replaced; a masked secret means "keep it".
    if rep["config"].get("clientSecret") == MASKED:
        rep["config"]["clientSecret"] = current["config"].get("clientSecret")
    rep["internalId"] = current["internalId"]
    realm.idps[current["alias"]] = rep
    return Answer(204, None, {"Cache-Control": "no-cache"})


@route("DELETE", IDP)
def delete_idp(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    idp = idp_of(realm, m)
    del realm.idps[idp["alias"]]
    for mapper in realm.mappers_of(idp["alias"]):
        del realm.mappers[mapper["id"]]
    return Answer(204, None, {"Cache-Control": "no-cache"})


def checked_mapper(realm: Realm, idp: dict[str, Any], rep: Any, own_id: str | None) -> dict:
    rep = strict(rep, MAPPER_FIELDS, "IdentityProviderMapperRepresentation")
    if not rep.get("name"):
        raise Answer(409, {"error": "conflict", "error_description": "Duplicate resource error"})
    clash = any(
        other["name"] == rep["name"] and other["id"] != own_id
        for other in realm.mappers_of(idp["alias"])
    )
    if clash:
        raise Answer(
            400,
            {
                "errorMessage": f"Failed to add mapper '{rep['name']}' to identity provider "
                f"[{idp['providerId']}]."
            },
        )
    return {
        "id": rep.get("id") or own_id or str(uuid.uuid4()),
        "name": rep["name"],
        "identityProviderAlias": rep.get("identityProviderAlias", idp["alias"]),
        "identityProviderMapper": rep.get("identityProviderMapper", ""),
        "config": dict(rep.get("config") or {}),
    }


@route("GET", IDP + r"/mappers")
def list_mappers(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    return Answer(200, realm.mappers_of(idp_of(realm, m)["alias"]))


@route("POST", IDP + r"/mappers")
def add_mapper(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    idp = idp_of(realm, m)
    mapper = checked_mapper(realm, idp, request.json(), None)
    realm.mappers[mapper["id"]] = mapper
    location = f"{base}/admin/realms/{realm.name}/identity-provider/instances/{idp['alias']}"
    return Answer(201, None, {"Location": f"{location}/mappers/{mapper['id']}"})


def mapper_of(realm: Realm, match: re.Match[str]) -> dict[str, Any]:
    mapper = realm.mappers.get(match["id"])
    if mapper is None:
        raise Answer(404, {"error": "Model not found"})
    return mapper


@route("GET", IDP + r"/mappers/(?P<id>[^/]+)")
def get_mapper(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    idp_of(realm, m)
    return Answer(200, mapper_of(realm, m))


@route("PUT", IDP + r"/mappers/(?P<id>[^/]+)")
def update_mapper(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    realm = realm_of(standin, m)
    idp = idp_of(realm, m)
    body = request.json()
    existing = mapper_of(realm, m)
    # Keycloak writes the mapper the body's id names (the path's when absent).
    target = body.get("id") or existing["id"]
    if target not in realm.mappers:
        return Answer(404, {"error": "Model not found"})
    realm.mappers[target] = checked_mapper(realm, idp, {**body, "id": target}, target)
    return Answer(204, None, {"Cache-Control": "no-cache"})


@route("DELETE", IDP + r"/mappers/(?P<id>[^/]+)")
def delete_mapper(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    realm = realm_of(standin, m)
    idp_of(realm, m)
    del realm.mappers[mapper_of(realm, m)["id"]]
    return Answer(204, None, {"Cache-Control": "no-cache"})


# -- import-config: Keycloak reads a discovery document or SAML metadata ----------


@route("POST", r"/admin/realms/(?P<realm>[^/]+)/identity-provider/import-config", locked=False)
def import_config(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    with standin.lock:
        realm_of(standin, m)
    data = request.json()
    provider, url = data.get("providerId"), data.get("fromUrl")
    if provider not in PROVIDERS or not url:
        return Answer(400, {"error": "HTTP 400 Bad Request"})
    host = urlsplit(url).hostname or ""
    if not ipaddress.ip_address(host).is_loopback:  # tests reach loopback only
        return Answer(400, {"errorMessage": "the stand-in fetches from 127.0.0.0/8 only"})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            document = response.read()
        config = _oidc_config(document) if provider != "saml" else _saml_config(document)
    except (OSError, ValueError, ET.ParseError, KeyError):
        return Answer(
            500,
            {
                "error": "unknown_error",
                "error_description": "For more on this error consult the server log.",
            },
        )
    config.setdefault("syncMode", "LEGACY")
    return Answer(200, config)


def _oidc_config(document: bytes) -> dict[str, str]:
    meta = json.loads(document)
    config = {
        "issuer": meta["issuer"],
        "authorizationUrl": meta["authorization_endpoint"],
        "tokenUrl": meta["token_endpoint"],
        "userInfoUrl": meta.get("userinfo_endpoint", ""),
        "jwksUrl": meta.get("jwks_uri", ""),
        "useJwksUrl": "true",
        "validateSignature": "true",
    }
    if meta.get("end_session_endpoint"):
        config["logoutUrl"] = meta["end_session_endpoint"]
    return config


SAML_MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DSIG = "{http://www.w3.org/2000/09/xmldsig#}"
POST_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


def _saml_config(document: bytes) -> dict[str, str]:
    root = ET.fromstring(document)
    idp = root.find(f"{SAML_MD}IDPSSODescriptor")
    if idp is None:
        return {}
    sso = [(e.get("Binding"), e.get("Location")) for e in idp.iter(f"{SAML_MD}SingleSignOnService")]
    post = [loc for binding, loc in sso if binding == POST_BINDING]
    config = {
        "idpEntityId": root.get("entityID", ""),
        "singleSignOnServiceUrl": (post or [loc for _, loc in sso] or [""])[0] or "",
        "postBindingResponse": str(bool(post)).lower(),
        "postBindingAuthnRequest": str(bool(post)).lower(),
        "postBindingLogout": "false",
        "wantAuthnRequestsSigned": idp.get("WantAuthnRequestsSigned", "false"),
        "validateSignature": "false",
        "loginHint": "false",
        "addExtensionsElementWithKeyInfo": "false",
        "enabledFromMetadata": "true",
    }
    formats = [e.text for e in idp.iter(f"{SAML_MD}NameIDFormat") if e.text]
    if formats:
        config["nameIDPolicyFormat"] = formats[0].strip()
    certificates = [
        (e.text or "").strip()
        for key in idp.iter(f"{SAML_MD}KeyDescriptor")
        if key.get("use") in (None, "signing")
        for e in key.iter(f"{DSIG}X509Certificate")
    ]
    if certificates:
        config["signingCertificate"] = ",".join(certificates)
        config["validateSignature"] = "true"
    return config
