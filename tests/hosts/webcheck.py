"""Small HTTP helpers for tests that talk to a host's stand-in web process."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from .harness import TestHost


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of a GET; errors are answers too, not exceptions.

    Sends ``X-Forwarded-Proto: https`` as nginx does: in production Mastodon
    redirects plain-HTTP requests (except /health) to https.
    """
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def get_json(host: TestHost, path: str) -> dict[str, Any]:
    status, body = get(host.web_url + path)
    assert status == 200, (status, body)
    return json.loads(body)


def instance(host: TestHost) -> dict[str, Any]:
    return get_json(host, "/api/v2/instance")


def answers_ok(url: str) -> bool:
    try:
        return get(url) == (200, b"OK")
    except OSError:
        return False


def healthy(host: TestHost) -> bool:
    return answers_ok(host.web_url + "/health")


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition``: a unit's process listens a moment after ``start``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
