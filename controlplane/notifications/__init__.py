"""Telling people things: email over SMTP."""

from controlplane.notifications.mail import MailNotConfigured, send_mail

__all__ = ["MailNotConfigured", "send_mail"]
