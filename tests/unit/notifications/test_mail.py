"""Email reaches a real SMTP server."""

from __future__ import annotations

import pytest

from controlplane.notifications import MailNotConfigured, send_mail
from tests.mailbox import Mailbox


def test_a_message_arrives_with_its_headers(mailbox: Mailbox) -> None:
    message_id = send_mail(["it@city.example"], "Maintenance on Tuesday", "Dear city,\n")
    (received,) = mailbox.wait_for(1)
    assert received["To"] == "it@city.example"
    assert received["Subject"] == "Maintenance on Tuesday"
    assert received["Message-ID"] == message_id
    assert received.get_content().splitlines() == ["Dear city,"]


def test_without_a_mail_server_sending_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from controlplane.settings import get_settings

    monkeypatch.delenv("HERD_SMTP_SERVER", raising=False)
    get_settings.cache_clear()
    with pytest.raises(MailNotConfigured, match="HERD_SMTP_SERVER"):
        send_mail(["it@city.example"], "x", "y")
    get_settings.cache_clear()
