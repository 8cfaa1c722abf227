"""The health gate: is a server up, and running the version it should?

Mastodon answers `GET /health` with `OK` (no dependency checks, so it only
proves puma answers) and `GET /api/v2/instance` with its `version`, which may
carry a suffix such as `+glitch`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from controlplane.fleet.models import Host
from controlplane.fleet.placement import Slot
from controlplane.servers.models import Server
from controlplane.settings import get_settings


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    version: str | None
    detail: str


def base_url(server: Server, host: Host) -> str:
    if get_settings().health_check == "direct":
        assert server.slot is not None
        return f"http://{host.address}:{Slot.on(host, server.slot).web_port}"
    return f"https://{server.domain}"


def same_version(running: str | None, tag: str) -> bool:
    """`v4.5.2` (a tag) matches `4.5.2` and `4.5.2+glitch` (what Mastodon reports)."""
    if running is None:
        return False
    return running.split("+", 1)[0] == tag.removeprefix("v")


def check(url: str, expected_tag: str | None, domain: str | None = None) -> HealthReport:
    timeout = get_settings().health_timeout_seconds
    # A direct check passes on what nginx would: the server's domain, and
    # that the visitor came over HTTPS (Mastodon redirects plain HTTP).
    headers = {"Host": domain, "X-Forwarded-Proto": "https"} if domain else {}
    try:
        with httpx.Client(
            base_url=url, timeout=timeout, follow_redirects=False, headers=headers
        ) as client:
            health = client.get("/health")
            if health.status_code != 200 or health.text.strip() != "OK":
                return HealthReport(False, None, f"/health answered {health.status_code}")
            instance = client.get("/api/v2/instance")
            if instance.status_code != 200:
                return HealthReport(
                    False, None, f"/api/v2/instance answered {instance.status_code}"
                )
            version = instance.json().get("version")
    except (httpx.HTTPError, ValueError) as exc:
        return HealthReport(False, None, f"{type(exc).__name__}: {exc}")
    if expected_tag is not None and not same_version(version, expected_tag):
        return HealthReport(False, version, f"runs {version}, expected {expected_tag}")
    return HealthReport(True, version, "healthy")
