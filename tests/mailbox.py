"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives:
the `mailbox` fixture, with HERD_SMTP_* pointing at it."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from controlplane.settings import get_settings
from tests.moto import free_port


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    box = Mailbox()
    # aiosmtpd checks its own start by connecting to the port it was given,
    # so it needs a real number rather than 0.
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("HERD_SMTP_SERVER", "127.0.0.1")
        monkeypatch.setenv("HERD_SMTP_PORT", str(port))
        get_settings.cache_clear()
        yield box
    finally:
        controller.stop()
        get_settings.cache_clear()
