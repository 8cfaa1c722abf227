"""The variables a server's playbooks receive: one mapping from Herd's
records to the roles' inputs (documented in each role's defaults/main.yml)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from controlplane.branding.service import branding_variables
from controlplane.fleet.models import Host
from controlplane.fleet.placement import Slot
from controlplane.identity.service import oidc_variables
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from controlplane.storage import storage_variables


def server_variables(
    server: Server, host: Host, secrets: dict[str, str], version: str | None = None
) -> dict[str, Any]:
    settings = get_settings()
    assert server.slot is not None, "a server gets its variables once it is placed"
    slot = Slot.on(host, server.slot)
    user = slot.unix_user
    variables: dict[str, Any] = {
        # Fleet-wide role variables first: a server's own values win.
        **settings.playbook_vars,
        "mastodon_local_domain": server.domain,
        "mastodon_version": version
        or (server.version and f"v{server.version}")
        or settings.mastodon_version,
        "mastodon_repo_url": settings.mastodon_repo_url,
        "mastodon_user": user,
        "mastodon_home": f"/home/{user}",
        "mastodon_web_port": slot.web_port,
        "mastodon_streaming_ports": [slot.streaming_port],
        # Named for the server, not the slot: a deprovisioned server's database
        # may be kept for its retention period while the slot serves another.
        "mastodon_db_name": f"mastodon_{server.id.hex}",
        "mastodon_db_user": user,
        "mastodon_redis_db": slot.redis_db,
        "mastodon_site_title": server.title,
        "mastodon_site_short_description": server.description,
        "mastodon_site_contact_email": server.contact_email or "",
        "mastodon_registrations_mode": server.registrations_mode,
        "mastodon_smtp_from_address": settings.smtp_from_address,
        # Secrets: the roles mark every task that touches these no_log.
        "mastodon_secret_key_base": secrets["SECRET_KEY_BASE"],
        "mastodon_vapid_private_key": secrets["VAPID_PRIVATE_KEY"],
        "mastodon_vapid_public_key": secrets["VAPID_PUBLIC_KEY"],
        "mastodon_ar_deterministic_key": secrets["ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY"],
        "mastodon_ar_key_derivation_salt": secrets["ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT"],
        "mastodon_ar_primary_key": secrets["ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY"],
        "mastodon_db_password": secrets["DB_PASS"],
    }
    if settings.smtp_server:
        variables.update(
            mastodon_smtp_server=settings.smtp_server,
            mastodon_smtp_port=settings.smtp_port,
            mastodon_smtp_login=settings.smtp_login or "",
            mastodon_smtp_password=settings.smtp_password or "",
        )
    return variables


def deployment_variables(
    session: Session,
    server: Server,
    host: Host,
    secrets: dict[str, str],
    version: str | None = None,
) -> dict[str, Any]:
    """Everything a server's playbooks are given: its role variables, its
    object storage's and its single sign-on's. The playbook steps run with
    these, and the preview and drift check render from them, so both show
    what a run would deploy."""
    return {
        **server_variables(server, host, secrets, version),
        **storage_variables(session, server.id),
        **oidc_variables(session, server),
        **branding_variables(session, server),
    }
