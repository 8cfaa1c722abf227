"""Removing secrets from anything Herd keeps or shows: job events, step
results, errors.

Two nets: every secret value Herd handed to the run is replaced wherever it
appears, and values under keys that name a secret are replaced whatever they
hold (a playbook may generate a secret Herd never saw)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "********"
_SENSITIVE_KEY = re.compile(
    r"(pass(word|phrase)?|secret|token|private|credential|api[_-]?key|_key$|^key$|vapid|"
    r"encryption|otp|salt)",
    re.IGNORECASE,
)
# Values shorter than this are too likely to occur by chance (a port, "true")
# for blind replacement; secrets Herd generates are far longer.
MIN_SECRET_LENGTH = 8
MAX_STRING = 4000


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(values, key=len, reverse=True)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        if len(value) > MAX_STRING:
            value = value[:MAX_STRING] + f"… ({len(value) - MAX_STRING} more characters)"
        return value

    def value(self, value: Any, key: str | None = None) -> Any:
        if key is not None and _SENSITIVE_KEY.search(key) and value not in (None, "", False):
            return MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value
