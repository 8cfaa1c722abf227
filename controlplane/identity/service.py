"""Single sign-on as organisations and their servers see it: the choice an
organisation makes (stored as desired state), the jobs that bring its servers
to it, and what those jobs' steps do with Keycloak and Herd's records.

Desired state: a server runs with SSO exactly when its organisation has SSO
on and the server is not being removed. Every step reads that, rather than
being told "on" or "off", so an `sso` job started before a change of mind does
the right thing for the newest choice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm
from controlplane.crypto import secret_box
from controlplane.identity.errors import IdentityError
from controlplane.identity.keycloak import get_identity
from controlplane.identity.mastodon import mastodon_oidc_env
from controlplane.identity.models import OrganisationSso, ServerSso
from controlplane.identity.settings import IdentitySettings
from controlplane.identity.specs import (
    Branding,
    IdentitySpace,
    OidcUpstream,
    SamlUpstream,
    ServerClient,
    Upstream,
)
from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job
from controlplane.problems import Conflict, InvalidInput, NotFound
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Organisation

SSO_JOB = "sso"
ROTATE_JOB = "sso_rotate"
# Servers whose Mastodon runs and can take new settings now; the others get
# them from the playbook run that brings them up (provision, resume).
RUNNING = frozenset({ServerState.active})
# Servers that must lose their client.
REMOVED = frozenset({ServerState.deprovisioning, ServerState.deleted})


class SsoNotAvailable(Conflict):
    kind, title = "sso-not-available", "Single sign-on is not available"


class SsoNotConfigured(Conflict):
    kind, title = "sso-not-configured", "Single sign-on is not set up for this server"


@dataclass(frozen=True)
class SsoChange:
    """What a caller asked for; the API's schema validates the shapes."""

    enabled: bool
    display_name: str
    login_theme: str | None
    omniauth_only: bool
    one_click_sso_login: bool
    # Non-secret fields with "kind"; None: accounts live in the realm itself.
    upstream: dict[str, Any] | None
    # None keeps the stored secret (it is never shown back).
    upstream_client_secret: str | None


@dataclass(frozen=True)
class ServerSsoView:
    server_id: uuid.UUID
    domain: str
    state: str  # active | pending | off
    client_id: str | None
    rotated_at: Any


@dataclass(frozen=True)
class SsoView:
    organisation_id: uuid.UUID
    enabled: bool
    display_name: str
    login_theme: str | None
    omniauth_only: bool
    one_click_sso_login: bool
    upstream: dict[str, Any] | None
    upstream_has_client_secret: bool
    realm: str | None
    issuer: str | None
    # What the organisation registers at its own IdP for Keycloak.
    broker_redirect_uri: str | None
    saml_entity_id: str | None
    saml_metadata_url: str | None
    servers: list[ServerSsoView]
    jobs: list[uuid.UUID]


# -- the organisation's choice ---------------------------------------------------


def _organisation(
    session: Session, principal: Principal, org_id: uuid.UUID, perm: Perm
) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound("organisation not found")
    principal.require(org_id, perm)
    return org


def get_sso(session: Session, principal: Principal, org_id: uuid.UUID) -> SsoView:
    org = _organisation(session, principal, org_id, Perm.org_read)
    return _view(session, org, session.get(OrganisationSso, org_id), [])


def update_sso(
    session: Session, principal: Principal, org_id: uuid.UUID, change: SsoChange
) -> SsoView:
    """Record the organisation's choice and start an `sso` job for each of its
    running servers; the caller commits (the jobs are sent after that)."""
    org = _organisation(session, principal, org_id, Perm.org_update)
    if change.enabled and not IdentitySettings().configured:
        raise SsoNotAvailable(
            "this Herd has no Keycloak configured (HERD_KEYCLOAK_*), so single sign-on "
            "cannot be switched on"
        )
    if change.one_click_sso_login and not change.omniauth_only:
        raise InvalidInput("one-click sign-in needs omniauth_only: Mastodon ignores it otherwise")
    row = session.get(OrganisationSso, org_id) or OrganisationSso(organisation_id=org_id)
    secret = row.upstream_secret_encrypted
    if change.upstream is None:
        secret = None
    elif change.upstream_client_secret is not None:
        secret = secret_box().encrypt(change.upstream_client_secret)
    elif (row.upstream or {}).get("kind") != change.upstream.get("kind"):
        secret = None
    # Build the spec now, so a bad issuer or missing secret is refused here
    # rather than in a worker.
    _upstream_spec(change.upstream, secret)
    row.enabled = change.enabled
    row.display_name = change.display_name.strip()
    row.login_theme = change.login_theme
    row.omniauth_only = change.omniauth_only
    row.one_click_sso_login = change.one_click_sso_login
    row.upstream = change.upstream
    row.upstream_secret_encrypted = secret
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    started = [job.id for job in _converge_servers(session, org_id)]
    audit.record(
        session,
        principal,
        "organisation.sso_updated",
        "organisation",
        org_id,
        org_id,
        {
            "enabled": change.enabled,
            "upstream": (change.upstream or {}).get("kind"),
            "omniauth_only": change.omniauth_only,
            "one_click_sso_login": change.one_click_sso_login,
            "jobs": [str(j) for j in started],
        },
    )
    return _view(session, org, row, started)


def _converge_servers(session: Session, org_id: uuid.UUID) -> list[Job]:
    from provisioning.registry import pipelines

    servers = session.exec(
        select(Server).where(
            Server.organisation_id == org_id, col(Server.state).in_(sorted(RUNNING))
        )
    ).all()
    started = []
    for server in servers:
        job = jobs.active_job(session, server.id, SSO_JOB)
        if job is None or job.started_at is not None:
            # One under way may have read the old choice already: run again.
            job = jobs.create_job(session, SSO_JOB, pipelines()[SSO_JOB].step_names, server.id)
        started.append(job)
    return started


def start_rotation(session: Session, principal: Principal, server_id: uuid.UUID) -> Job:
    """Record an `sso_rotate` job: Keycloak makes a new secret, the server is
    deployed with it, the old one is retired. One at a time per server."""
    from provisioning.registry import pipelines

    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    principal.require(server.organisation_id, Perm.servers_update, "server")
    if desired(session, server) is None or session.get(ServerSso, server.id) is None:
        raise SsoNotConfigured("the server has no single sign-on client to rotate")
    if server.state not in RUNNING:
        raise Conflict(f"the server is {server.state.value}: rotate once it is active")
    job = jobs.active_job(session, server.id, ROTATE_JOB)
    if job is None:
        job = jobs.create_job(session, ROTATE_JOB, pipelines()[ROTATE_JOB].step_names, server.id)
    audit.record(
        session,
        principal,
        "server.sso_secret_rotation",
        "server",
        server.id,
        server.organisation_id,
        {"job": str(job.id)},
    )
    return job


def _view(
    session: Session, org: Organisation, row: OrganisationSso | None, started: list[uuid.UUID]
) -> SsoView:
    settings = IdentitySettings()
    space = None
    if row is not None and row.enabled and settings.configured:
        space = get_identity().space_for(org.id, org.slug)
    endpoints = None
    if space is not None and row is not None and row.upstream is not None:
        from controlplane.identity import brokering

        spec = _upstream_spec(row.upstream, row.upstream_secret_encrypted)
        endpoints = brokering.endpoints(space, spec) if spec is not None else None
    clients = {
        c.server_id: c
        for c in session.exec(
            select(ServerSso).join(Server).where(Server.organisation_id == org.id)
        ).all()
    }
    servers = session.exec(
        select(Server)
        .where(Server.organisation_id == org.id, col(Server.state).not_in(sorted(REMOVED)))
        .order_by(col(Server.domain))
    ).all()
    enabled = row is not None and row.enabled
    views = []
    for server in servers:
        client = clients.get(server.id)
        state = (
            "active"
            if enabled and client is not None
            else ("pending" if enabled or client is not None else "off")
        )
        views.append(
            ServerSsoView(
                server.id,
                server.domain,
                state,
                client.client_id if client else None,
                client.rotated_at if client else None,
            )
        )
    return SsoView(
        organisation_id=org.id,
        enabled=enabled,
        display_name=row.display_name if row else "",
        login_theme=row.login_theme if row else None,
        omniauth_only=row.omniauth_only if row else False,
        one_click_sso_login=row.one_click_sso_login if row else False,
        upstream=row.upstream if row else None,
        upstream_has_client_secret=bool(row and row.upstream_secret_encrypted),
        realm=space.realm if space else None,
        issuer=space.issuer if space else None,
        broker_redirect_uri=endpoints.redirect_uri if endpoints else None,
        saml_entity_id=endpoints.saml_entity_id if endpoints else None,
        saml_metadata_url=endpoints.saml_metadata_url if endpoints else None,
        servers=views,
        jobs=started,
    )


def _upstream_spec(
    upstream: dict[str, Any] | None, secret_encrypted: str | None
) -> Upstream | None:
    if upstream is None:
        return None
    fields = {k: v for k, v in upstream.items() if k != "kind" and v is not None}
    if "scopes" in fields:
        fields["scopes"] = tuple(fields["scopes"])
    try:
        if upstream.get("kind") == "oidc":
            if secret_encrypted is None:
                raise InvalidInput("an OIDC identity provider needs its client_secret")
            return OidcUpstream(client_secret=secret_box().decrypt(secret_encrypted), **fields)
        if upstream.get("kind") == "saml":
            return SamlUpstream(**fields)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"identity provider: {exc}") from exc
    raise InvalidInput("identity provider kind must be oidc or saml")


# -- what the steps do ------------------------------------------------------------


def desired(session: Session, server: Server) -> OrganisationSso | None:
    """The organisation's SSO choice if this server should run with it."""
    if server.state in REMOVED:
        return None
    row = session.get(OrganisationSso, server.organisation_id)
    return row if row is not None and row.enabled else None


def _space(session: Session, server: Server) -> IdentitySpace:
    org = session.get(Organisation, server.organisation_id)
    assert org is not None
    return get_identity().space_for(org.id, org.slug)


def converge_client(session: Session, server: Server, config: OrganisationSso) -> ServerSso:
    """The organisation's realm (with its IdP) and the server's client as Herd
    wants them, and the secret Keycloak holds now recorded, encrypted.

    Reads Keycloak's current secret every time: after a rotation, or after a
    worker died between creating the client and committing this row, the row
    converges on what Keycloak holds, and the client is found by its derived
    clientId rather than made twice. Flushes; the caller commits.
    """
    org = session.get(Organisation, server.organisation_id)
    assert org is not None
    identity = get_identity()
    space = identity.ensure_space(
        organisation_id=org.id,
        slug=org.slug,
        branding=Branding(org.name, login_theme=config.login_theme),
    )
    upstream = _upstream_spec(config.upstream, config.upstream_secret_encrypted)
    if upstream is not None:
        identity.ensure_identity_provider(space, upstream)
    client = identity.ensure_server_client(space, server_id=server.id, domain=server.domain)
    secret = identity.client_secret(space, server.id)
    row = session.get(ServerSso, server.id) or ServerSso(
        server_id=server.id,
        realm=space.realm,
        client_id=client.client_id,
        redirect_uri=client.redirect_uri,
        issuer=space.issuer,
        secret_encrypted="",
    )
    box = secret_box()
    if not row.secret_encrypted or box.decrypt(row.secret_encrypted) != secret:
        row.secret_encrypted = box.encrypt(secret)
    row.realm, row.client_id = space.realm, client.client_id
    row.redirect_uri, row.issuer = client.redirect_uri, space.issuer
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def rotate_secret(session: Session, server: Server) -> str:
    """Have Keycloak replace the client's secret. The deploy that follows
    reads and records it (converge_client), so nothing is stored here."""
    rotation = get_identity().rotate_client_secret(_space(session, server), server.id)
    row = session.get(ServerSso, server.id)
    if row is not None:
        row.rotated_at = utcnow()
        session.add(row)
    until = rotation.previous_valid_until
    return until.isoformat() if until else "at once"


def retire_previous_secret(session: Session, server: Server) -> None:
    get_identity().retire_previous_secret(_space(session, server), server.id)


def remove_client(session: Session, server: Server) -> bool:
    """Delete the server's client in Keycloak and Herd's record of it. The
    realm stays: it holds the organisation's people and their links to its
    IdP, which its other servers (or a later change of mind) still use.
    True if Keycloak had a client to delete."""
    existed = False
    if IdentitySettings().configured:
        existed = get_identity().delete_server_client(_space(session, server), server.id)
    elif session.get(ServerSso, server.id) is not None:
        raise IdentityError(
            "Keycloak is no longer configured (HERD_KEYCLOAK_*), so the server's client "
            "cannot be deleted there"
        )
    row = session.get(ServerSso, server.id)
    if row is not None:
        session.delete(row)
        session.flush()
    return existed


def oidc_variables(session: Session, server: Server) -> dict[str, Any]:
    """The server's sso role variables: its client when SSO is wanted and
    the client exists, otherwise OIDC switched off."""
    config = desired(session, server)
    row = session.get(ServerSso, server.id)
    if config is None or row is None:
        return {"mastodon_oidc_enabled": False}
    org = session.get(Organisation, server.organisation_id)
    assert org is not None
    space = IdentitySpace(server.organisation_id, row.realm, row.issuer)
    client = ServerClient(server.id, row.client_id, "", server.domain, row.redirect_uri)
    env = mastodon_oidc_env(
        space,
        client,
        secret_box().decrypt(row.secret_encrypted),
        display_name=config.display_name or org.name,
        omniauth_only=config.omniauth_only,
        one_click_sso_login=config.one_click_sso_login,
    )
    return {
        "mastodon_oidc_enabled": True,
        "mastodon_oidc_display_name": env["OIDC_DISPLAY_NAME"],
        "mastodon_oidc_issuer": env["OIDC_ISSUER"],
        "mastodon_oidc_discovery": True,
        "mastodon_oidc_scope": env["OIDC_SCOPE"].split(","),
        "mastodon_oidc_uid_field": env["OIDC_UID_FIELD"],
        "mastodon_oidc_client_id": env["OIDC_CLIENT_ID"],
        "mastodon_oidc_client_secret": env["OIDC_CLIENT_SECRET"],
        "mastodon_oidc_redirect_uri": env["OIDC_REDIRECT_URI"],
        "mastodon_oidc_use_pkce": True,
        "mastodon_omniauth_only": config.omniauth_only,
        "mastodon_one_click_sso_login": config.one_click_sso_login,
    }


def sso_secrets(session: Session, server_id: uuid.UUID) -> list[str]:
    """The server's client secret and its organisation's IdP secret, for
    redaction of job output."""
    box = secret_box()
    found = []
    row = session.get(ServerSso, server_id)
    if row is not None:
        found.append(box.decrypt(row.secret_encrypted))
    server = session.get(Server, server_id)
    config = session.get(OrganisationSso, server.organisation_id) if server else None
    if config is not None and config.upstream_secret_encrypted:
        found.append(box.decrypt(config.upstream_secret_encrypted))
    return found
