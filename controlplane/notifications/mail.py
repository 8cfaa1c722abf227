"""Email over SMTP, from the HERD_SMTP_* settings.

Called from workers, never from a request: a slow or failing mail server
then delays a task that the pipeline retries, not a customer's click.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from controlplane.problems import HerdError
from controlplane.settings import Settings, get_settings


class MailNotConfigured(HerdError):
    status = 503
    kind = "mail-not-configured"
    title = "Email is not configured"


def send_mail(
    to: list[str],
    subject: str,
    body: str,
    *,
    settings: Settings | None = None,
    message_id: str | None = None,
) -> str:
    """Send one plain-text message; returns its Message-ID. A caller that
    retries passes the same ``message_id`` so that mail clients and archives
    can tell a resend from a new message."""
    settings = settings or get_settings()
    if not settings.smtp_server:
        raise MailNotConfigured("set HERD_SMTP_SERVER (and port, login) to send email")
    message = EmailMessage()
    message["From"] = settings.smtp_from_address
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id or make_msgid(domain="herd")
    message.set_content(body)
    with smtplib.SMTP(settings.smtp_server, settings.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        # Submission servers offer STARTTLS; a local relay may not.
        if smtp.has_extn("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if settings.smtp_login:
            smtp.login(settings.smtp_login, settings.smtp_password or "")
        smtp.send_message(message)
    return str(message["Message-ID"])
