"""The stand-in's routes: Keycloak's admin API as Herd uses it.

Statuses and bodies follow Keycloak 26 (its admin REST API documentation and
resources, python-keycloak's own tests, and measurements published against
26.7.1), including the parts that look odd: not-found is spelled differently
per family ("Realm not found.", "Could not find client", the generic
"HTTP 404 Not Found" for an identity provider, "Model not found" for its
mapper); a duplicate identity provider mapper is a 400, not a 409; an
identity provider PUT replaces the whole provider while a client or realm PUT
updates only the fields it carries; reads show an identity provider's client
secret as ten asterisks; unknown fields in a representation are refused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from tests.identity.standin import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    SERVICE_CLIENT,
    SERVICE_SECRET,
    Answer,
    KeycloakStandIn,
    Realm,
    Request,
    new_secret,
)

NOT_FOUND = Answer(404, {"error": "HTTP 404 Not Found"})

# Field names of Keycloak's representations (a subset of each: enough for
# what Herd and these tests send, and every one of them real).
REALM_FIELDS = {
    "id", "realm", "displayName", "displayNameHtml", "enabled", "sslRequired",
    "registrationAllowed", "registrationEmailAsUsername", "loginWithEmailAllowed",
    "duplicateEmailsAllowed", "resetPasswordAllowed", "editUsernameAllowed", "rememberMe",
    "verifyEmail", "bruteForceProtected", "loginTheme", "accountTheme", "adminTheme",
    "emailTheme", "internationalizationEnabled", "organizationsEnabled", "attributes",
}  # fmt: skip
CLIENT_FIELDS = {
    "id", "clientId", "name", "description", "type", "rootUrl", "adminUrl", "baseUrl",
    "surrogateAuthRequired", "enabled", "alwaysDisplayInConsole", "clientAuthenticatorType",
    "secret", "registrationAccessToken", "redirectUris", "webOrigins", "notBefore",
    "bearerOnly", "consentRequired", "standardFlowEnabled", "implicitFlowEnabled",
    "directAccessGrantsEnabled", "serviceAccountsEnabled", "authorizationServicesEnabled",
    "publicClient", "frontchannelLogout", "protocol", "attributes",
    "authenticationFlowBindingOverrides", "fullScopeAllowed", "nodeReRegistrationTimeout",
    "registeredNodes", "protocolMappers", "defaultClientScopes", "optionalClientScopes",
    "access", "origin",
}  # fmt: skip

Route = Callable[[KeycloakStandIn, Request, str, re.Match[str]], Answer]
ROUTES: list[tuple[str, re.Pattern[str], Route, bool]] = []


def route(method: str, pattern: str, locked: bool = True) -> Callable[[Route], Route]:
    """Register a route. Routes run holding the stand-in's lock, except those
    that call out over HTTP themselves (to this very server, possibly)."""

    def register(fn: Route) -> Route:
        ROUTES.append((method, re.compile(pattern + "$"), fn, locked))
        return fn

    return register


def dispatch(standin: KeycloakStandIn, request: Request, base: str) -> Answer:
    if request.path.startswith("/upstream/"):
        document = standin.documents.get(request.path)
        return Answer(200, document) if document else NOT_FOUND
    matched = [(m, hit, fn, lk) for m, p, fn, lk in ROUTES if (hit := p.match(request.path))]
    if not matched:
        return NOT_FOUND
    if request.path.startswith("/admin/") and not standin.authorised(
        request.headers.get("authorization")
    ):
        return Answer(401, {"error": "HTTP 401 Unauthorized"})
    for method, match, fn, locked in matched:
        if method == request.method:
            if not locked:
                return fn(standin, request, base, match)
            with standin.lock:
                return fn(standin, request, base, match)
    return Answer(405, {"error": "HTTP 405 Method Not Allowed"})


def strict(rep: Any, fields: set[str], name: str) -> dict[str, Any]:
    if not isinstance(rep, dict):
        raise Answer(400, {"error": "unknown_error", "error_description": "Cannot parse the JSON"})
    for key in rep:
        if key not in fields:
            raise Answer(
                400,
                {"error": f'Invalid json representation for {name}. Unrecognized field "{key}"'},
            )
    return rep


def realm_of(standin: KeycloakStandIn, match: re.Match[str]) -> Realm:
    realm = standin.realms.get(match["realm"])
    if realm is None:
        raise Answer(404, {"error": "Realm not found."})
    return realm


# -- tokens -----------------------------------------------------------------


@route("POST", r"/realms/(?P<realm>[^/]+)/protocol/openid-connect/token")
def token(standin: KeycloakStandIn, request: Request, base: str, match: re.Match[str]) -> Answer:
    if match["realm"] not in standin.realms:
        return Answer(404, {"error": "Realm does not exist"})
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    grant, client = form.get("grant_type"), form.get("client_id")
    bad_client = Answer(
        401,
        {
            "error": "unauthorized_client",
            "error_description": "Invalid client or Invalid client credentials",
        },
    )
    if grant == "client_credentials" and (match["realm"], client) != ("master", SERVICE_CLIENT):
        # Any other confidential client authenticates with its own secret,
        # which is how tests see which secret Keycloak accepts.
        realm = standin.realms[match["realm"]]
        found = realm.client(client or "")
        if found is None or realm.secrets.get(found["id"]) != form.get("client_secret"):
            return bad_client
        if not found["serviceAccountsEnabled"]:
            return Answer(
                400,
                {
                    "error": "unauthorized_client",
                    "error_description": "Client not enabled to retrieve service account",
                },
            )
        return Answer(200, standin.issue_token(with_refresh=False))
    if match["realm"] != "master":
        return bad_client
    if grant == "password":
        if client != "admin-cli":
            return bad_client
        if (form.get("username"), form.get("password")) != (ADMIN_USER, ADMIN_PASSWORD):
            return Answer(
                401, {"error": "invalid_grant", "error_description": "Invalid user credentials"}
            )
        return Answer(200, standin.issue_token(with_refresh=True))
    if grant == "client_credentials":
        if (client, form.get("client_secret")) != (SERVICE_CLIENT, SERVICE_SECRET):
            return bad_client
        # Keycloak issues no refresh token for client credentials by default.
        return Answer(200, standin.issue_token(with_refresh=False))
    if grant == "refresh_token":
        with standin.lock:
            known = form.get("refresh_token") in standin.refresh_tokens
        if not known:
            return Answer(
                400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
            )
        return Answer(200, standin.issue_token(with_refresh=True))
    return Answer(
        400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
    )


@route("GET", r"/realms/(?P<realm>[^/]+)/\.well-known/openid-configuration")
def discovery(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    if m["realm"] not in standin.realms:
        return Answer(404, {"error": "Realm does not exist"})
    issuer = f"{base}/realms/{m['realm']}"
    endpoints = f"{issuer}/protocol/openid-connect"
    return Answer(
        200,
        {
            "issuer": issuer,
            "authorization_endpoint": f"{endpoints}/auth",
            "token_endpoint": f"{endpoints}/token",
            "userinfo_endpoint": f"{endpoints}/userinfo",
            "end_session_endpoint": f"{endpoints}/logout",
            "jwks_uri": f"{endpoints}/certs",
        },
    )


# -- realms -------------------------------------------------------------------


@route("GET", r"/admin/realms")
def list_realms(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    return Answer(200, [r.rep for r in standin.realms.values()])


@route("POST", r"/admin/realms")
def create_realm(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    rep = strict(request.json(), REALM_FIELDS, "RealmRepresentation")
    name = rep.get("realm")
    if not name:
        return Answer(400, {"errorMessage": "Realm name cannot be empty"})
    if name in standin.realms:
        return Answer(409, {"errorMessage": f"Realm {name} already exists"})
    standin.add_realm(rep)
    return Answer(201, None, {"Location": f"{base}/admin/realms/{name}"})


@route("GET", r"/admin/realms/(?P<realm>[^/]+)")
def get_realm(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    return Answer(200, realm_of(standin, m).rep)


@route("PUT", r"/admin/realms/(?P<realm>[^/]+)")
def update_realm(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    rep = strict(request.json(), REALM_FIELDS, "RealmRepresentation")
    if rep.get("realm", realm.name) != realm.name:
        return Answer(400, {"errorMessage": "Renaming is not part of these tests"})
    # Top-level fields that are present replace; attributes merge by key.
    attributes = {**realm.rep.get("attributes", {}), **(rep.pop("attributes", None) or {})}
    realm.rep.update({k: v for k, v in rep.items() if v is not None}, attributes=attributes)
    return Answer(204)


@route("DELETE", r"/admin/realms/(?P<realm>[^/]+)")
def delete_realm(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    del standin.realms[realm.name]
    return Answer(204)


# -- clients -------------------------------------------------------------------


def client_view(realm: Realm, client: dict[str, Any]) -> dict[str, Any]:
    view = dict(client)
    if not client["publicClient"] and client["id"] in realm.secrets:
        view["secret"] = realm.secrets[client["id"]]
    return view


def client_of(realm: Realm, match: re.Match[str]) -> dict[str, Any]:
    client = realm.clients.get(match["id"])
    if client is None:
        raise Answer(404, {"error": "Could not find client"})
    return client


@route("GET", r"/admin/realms/(?P<realm>[^/]+)/clients")
def list_clients(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    wanted = request.query.get("clientId")
    found = [c for c in realm.clients.values() if wanted in (None, "", c["clientId"])]
    return Answer(200, [client_view(realm, c) for c in found])


@route("POST", r"/admin/realms/(?P<realm>[^/]+)/clients")
def create_client(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    realm = realm_of(standin, m)
    rep = strict(request.json(), CLIENT_FIELDS, "ClientRepresentation")
    if not rep.get("clientId"):
        return Answer(400, {"errorMessage": "Client ID is missing"})
    if realm.client(rep["clientId"]) is not None:
        return Answer(409, {"errorMessage": f"Client {rep['clientId']} already exists"})
    secret = rep.pop("secret", None)
    client = standin.add_client(realm, rep)
    if secret and not client["publicClient"]:
        realm.secrets[client["id"]] = secret
    return Answer(
        201, None, {"Location": f"{base}/admin/realms/{realm.name}/clients/{client['id']}"}
    )


@route("GET", r"/admin/realms/(?P<realm>[^/]+)/clients/(?P<id>[^/]+)")
def get_client(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    return Answer(200, client_view(realm, client_of(realm, m)))


@route("PUT", r"/admin/realms/(?P<realm>[^/]+)/clients/(?P<id>[^/]+)")
def update_client(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    realm = realm_of(standin, m)
    client = client_of(realm, m)
    rep = strict(request.json(), CLIENT_FIELDS, "ClientRepresentation")
    if rep.get("clientId", client["clientId"]) != client["clientId"] and realm.client(
        rep["clientId"]
    ):
        return Answer(409, {"errorMessage": f"Client {rep['clientId']} already exists"})
    rep.pop("id", None)
    if "secret" in rep:
        realm.secrets[client["id"]] = rep.pop("secret")
    # Fields present replace, absent ones stay; attributes merge key by key.
    attributes = {**client["attributes"], **(rep.pop("attributes", None) or {})}
    client.update({k: v for k, v in rep.items() if v is not None}, attributes=attributes)
    return Answer(204)


@route("DELETE", r"/admin/realms/(?P<realm>[^/]+)/clients/(?P<id>[^/]+)")
def delete_client(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    realm = realm_of(standin, m)
    client = client_of(realm, m)
    del realm.clients[client["id"]]
    realm.secrets.pop(client["id"], None)
    return Answer(204, None, {"Cache-Control": "no-cache"})


@route("GET", r"/admin/realms/(?P<realm>[^/]+)/clients/(?P<id>[^/]+)/client-secret")
def get_secret(standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]) -> Answer:
    realm = realm_of(standin, m)
    client = client_of(realm, m)
    answer: dict[str, Any] = {"type": "secret"}
    if client["id"] in realm.secrets:
        answer["value"] = realm.secrets[client["id"]]
    return Answer(200, answer)


@route("POST", r"/admin/realms/(?P<realm>[^/]+)/clients/(?P<id>[^/]+)/client-secret")
def regenerate_secret(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    realm = realm_of(standin, m)
    client = client_of(realm, m)
    # No secret-rotation policy here (Keycloak's default): the old secret is
    # simply replaced.
    realm.secrets[client["id"]] = new_secret()
    client["attributes"]["client.secret.creation.time"] = str(int(time.time()))
    return Answer(200, {"type": "secret", "value": realm.secrets[client["id"]]})


@route("DELETE", r"/admin/realms/(?P<realm>[^/]+)/clients/(?P<id>[^/]+)/client-secret/rotated")
def invalidate_rotated(
    standin: KeycloakStandIn, request: Request, base: str, m: re.Match[str]
) -> Answer:
    client_of(realm_of(standin, m), m)
    return Answer(204)
