"""Validation of the domain a Mastodon server lives under (LOCAL_DOMAIN).

A domain is checked once, at ordering, and stored in its ASCII form; it never
changes afterwards, because Mastodon's accounts and keys are bound to it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import idna

# Special-use and reserved names (RFC 2606, RFC 6761, RFC 6762, RFC 7686,
# RFC 8375, RFC 9476, ICANN's .internal): nothing there can carry a public
# Mastodon server.
RESERVED_SUFFIXES = (
    "test",
    "example",
    "invalid",
    "localhost",
    "local",
    "onion",
    "alt",
    "internal",
    "arpa",
    "example.com",
    "example.net",
    "example.org",
    "home.arpa",
    "localdomain",
    "lan",
    "intranet",
    "corp",
    "home",
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


class InvalidDomain(ValueError):
    pass


def normalise_domain(raw: str, extra_reserved: Iterable[str] = ()) -> str:
    """Return the domain's ASCII form, or raise InvalidDomain saying why."""
    candidate = raw.strip()
    if not candidate:
        raise InvalidDomain("the domain is empty")
    if candidate.endswith("."):
        candidate = candidate[:-1]
    if _is_ip_address(candidate):
        raise InvalidDomain("an IP address is not a domain name")
    if any(ch in candidate for ch in "/:@ \t?#[]\\"):
        raise InvalidDomain("give a bare domain name, without scheme, port, path or spaces")
    try:
        ascii_form = idna.encode(candidate, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidDomain(f"not a valid internationalised domain name: {exc}") from exc
    ascii_form = ascii_form.lower()
    if len(ascii_form) > 253:
        raise InvalidDomain("a domain name is at most 253 characters")
    _refuse_reserved(ascii_form, extra_reserved)
    labels = ascii_form.split(".")
    if len(labels) < 2:
        raise InvalidDomain("a domain needs at least two labels, such as social.example.org")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidDomain(f"'{label}' is not a valid label (letters, digits, inner hyphens)")
        if label[2:4] == "--" and not label.startswith("xn--"):
            raise InvalidDomain(f"'{label}' uses the reserved '??--' form")
    if not _TLD.match(labels[-1]):
        raise InvalidDomain(f"'{labels[-1]}' is not a top-level domain")
    return ascii_form


def unicode_form(ascii_domain: str) -> str:
    try:
        return idna.decode(ascii_domain)
    except idna.IDNAError:
        return ascii_domain


def _is_ip_address(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate.strip("[]"))
    except ValueError:
        # Digits-and-dots that are not a valid address (999.1.1.1) are still
        # not a name anyone can register.
        return bool(re.fullmatch(r"[0-9.]+", candidate))
    return True


def _refuse_reserved(domain: str, extra_reserved: Iterable[str]) -> None:
    for suffix in (*RESERVED_SUFFIXES, *(s.lower().strip(".") for s in extra_reserved)):
        if domain == suffix or domain.endswith("." + suffix):
            raise InvalidDomain(f"'{suffix}' is reserved and cannot host a server")
