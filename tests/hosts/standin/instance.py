"""Mastodon's public server metadata: /api/v2/instance, /api/v1/instance, NodeInfo.

Shapes follow docs.joinmastodon.org (entities/Instance, methods/instance)
and Mastodon's NodeInfo serializer; values come from the environment the
web process booted with, the checked-out version and the site settings that
``rails runner`` saved in the stand-in database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SOURCE_URL = "https://github.com/mastodon/mastodon"


def domains(env: Mapping[str, str]) -> tuple[str, str]:
    local = env.get("LOCAL_DOMAIN") or "localhost"
    return local, env.get("WEB_DOMAIN") or local


def instance_v2(
    env: Mapping[str, str], version: str, api_version: int, settings: Mapping[str, Any], users: int
) -> dict[str, Any]:
    local, web = domains(env)
    mode = settings.get("registrations_mode", "none")
    return {
        "domain": local,
        "title": settings.get("site_title", "Mastodon"),
        "version": version,
        "source_url": SOURCE_URL,
        "description": settings.get("site_short_description", ""),
        "usage": {"users": {"active_month": users}},
        "thumbnail": {
            "url": f"https://{web}/packs/media/images/preview.png",
            "blurhash": None,
            "versions": {},
        },
        "icon": [],
        "languages": ["en"],
        "configuration": {
            "urls": {
                "streaming": f"wss://{web}",
                "status": settings.get("status_page_url"),
                "about": f"https://{web}/about",
                "privacy_policy": f"https://{web}/privacy-policy",
                "terms_of_service": None,
            },
            "vapid": {"public_key": env.get("VAPID_PUBLIC_KEY", "")},
            "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
            "statuses": {
                "max_characters": 500,
                "max_media_attachments": 4,
                "characters_reserved_per_url": 23,
            },
            "media_attachments": {
                "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "video/mp4"],
                "image_size_limit": 16777216,
                "image_matrix_limit": 33177600,
                "video_size_limit": 103809024,
                "video_frame_rate_limit": 120,
                "video_matrix_limit": 8294400,
            },
            "polls": {
                "max_options": 4,
                "max_characters_per_option": 50,
                "min_expiration": 300,
                "max_expiration": 2629746,
            },
            "translation": {"enabled": False},
        },
        "registrations": {
            "enabled": mode != "none",
            "approval_required": mode == "approved",
            "message": settings.get("closed_registrations_message"),
            "url": None,
        },
        "api_versions": {"mastodon": api_version},
        "contact": {"email": settings.get("site_contact_email", ""), "account": None},
        "rules": [],
    }


def instance_v1(
    env: Mapping[str, str], version: str, settings: Mapping[str, Any], users: int
) -> dict[str, Any]:
    local, web = domains(env)
    mode = settings.get("registrations_mode", "none")
    return {
        "uri": local,
        "title": settings.get("site_title", "Mastodon"),
        "short_description": settings.get("site_short_description", ""),
        "description": settings.get("site_short_description", ""),
        "email": settings.get("site_contact_email", ""),
        "version": version,
        "urls": {"streaming_api": f"wss://{web}"},
        "stats": {"user_count": users, "status_count": 0, "domain_count": 0},
        "thumbnail": f"https://{web}/packs/media/images/preview.png",
        "languages": ["en"],
        "registrations": mode != "none",
        "approval_required": mode == "approved",
        "invites_enabled": False,
        "contact_account": None,
        "rules": [],
    }


def nodeinfo_links(env: Mapping[str, str]) -> dict[str, Any]:
    _, web = domains(env)
    return {
        "links": [
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                "href": f"https://{web}/nodeinfo/2.0",
            }
        ]
    }


def nodeinfo(
    env: Mapping[str, str], version: str, settings: Mapping[str, Any], users: int
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "software": {"name": "mastodon", "version": version},
        "protocols": ["activitypub"],
        "services": {"outbound": [], "inbound": []},
        "usage": {
            "users": {"total": users, "activeMonth": users, "activeHalfyear": users},
            "localPosts": 0,
        },
        "openRegistrations": settings.get("registrations_mode", "none") != "none",
        "metadata": {
            "nodeName": settings.get("site_title", "Mastodon"),
            "nodeDescription": settings.get("site_short_description", ""),
        },
    }
