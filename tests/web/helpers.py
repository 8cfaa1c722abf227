"""Signing in through the pages, and reading the CSRF token a page carries."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    match = _CSRF.search(page.text)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def sign_in(client: TestClient, token: str) -> httpx.Response:
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in/token",
        data={"token": token, "next": "/", "csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer
