"""The API client the CLI's remote commands use: HERD_API_URL and
HERD_API_TOKEN from the environment, problem+json turned into a clear line."""

from __future__ import annotations

import os
from typing import Any

import httpx
import typer


class ApiClient:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        url = url or os.environ.get("HERD_API_URL", "http://127.0.0.1:8000")
        token = token or os.environ.get("HERD_API_TOKEN")
        if not token:
            raise typer.BadParameter("set HERD_API_TOKEN (an API token) or pass --token")
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self._http.get(path, params=params or None))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._check(self._http.post(path, json=body))

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        try:
            problem = response.json()
            message = f"{problem.get('title')}: {problem.get('detail')}"
        except ValueError:
            message = response.text[:200]
        typer.secho(f"error {response.status_code}: {message}", fg="red", err=True)
        raise typer.Exit(1)

    def close(self) -> None:
        self._http.close()
