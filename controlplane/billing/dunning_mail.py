"""What billing tells an organisation by email at each dunning step: a
failed payment, its servers suspended after the grace period, resumed once
paid, and a subscription ended (final backup, then the date the server is
removed). Each returns (subject, body)."""

from __future__ import annotations

from datetime import datetime


def _listed(domains: list[str]) -> str:
    return "".join(f"  - {domain}\n" for domain in sorted(domains))


def past_due(org_name: str, deadline: datetime) -> tuple[str, str]:
    return (
        f"Payment failed for {org_name}",
        f"A payment for {org_name}'s Mastodon hosting did not go through.\n\n"
        f"Please update the payment method or pay the open invoice before "
        f"{deadline:%Y-%m-%d}; after that date the servers are suspended "
        f"(their data is kept).\n",
    )


def suspended(org_name: str, domains: list[str]) -> tuple[str, str]:
    return (
        f"Servers suspended for {org_name}: payment overdue",
        f"The grace period for {org_name}'s overdue payment has passed, so these "
        f"Mastodon servers are suspended and show a maintenance page:\n\n"
        f"{_listed(domains)}\n"
        f"Their data is kept. They are resumed as soon as the open invoice is paid.\n",
    )


def resumed(org_name: str, domains: list[str]) -> tuple[str, str]:
    return (
        f"Servers resumed for {org_name}",
        f"Thank you: {org_name}'s payment has arrived and these Mastodon servers "
        f"are being resumed:\n\n{_listed(domains)}",
    )


def ended(org_name: str, domain: str, removal: datetime) -> tuple[str, str]:
    return (
        f"Subscription ended for {domain}",
        f"The subscription that paid for {domain} ({org_name}) has ended. The "
        f"server is suspended and a final backup of it is being taken.\n\n"
        f"The server and its data are removed on {removal:%Y-%m-%d}; the final "
        f"backup is kept for the retention period after that. Subscribe again "
        f"before that date to keep it.\n",
    )
