from __future__ import annotations

import pytest

from controlplane.servers.domains import InvalidDomain, normalise_domain, unicode_form


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("social.uni-example.edu", "social.uni-example.edu"),
        ("Social.Uni-Example.EDU", "social.uni-example.edu"),
        ("mastodon.gov.uk.", "mastodon.gov.uk"),
        ("  padded.social  ", "padded.social"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        # Cross-checked with the standard library's IDNA 2003 codec.
        ("социальная.рф", "социальная.рф".encode("idna").decode()),
        ("a1.b2.c3.social", "a1.b2.c3.social"),
    ],
)
def test_valid_domains_are_stored_in_ascii_form(raw: str, stored: str) -> None:
    assert normalise_domain(raw) == stored


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("localhost", "reserved"),
        ("mastodon", "at least two labels"),
        ("192.0.2.10", "IP address"),
        ("::1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("999.1.1.1", "IP address"),
        ("social.example", "reserved"),
        ("social.example.com", "reserved"),
        ("my.server.test", "reserved"),
        ("printer.local", "reserved"),
        ("hidden.onion", "reserved"),
        ("box.home.arpa", "reserved"),
        ("https://social.uni.edu", "bare domain"),
        ("social.uni.edu:443", "bare domain"),
        ("social.uni.edu/path", "bare domain"),
        ("under_score.org", "valid"),
        ("-lead.org", "valid"),
        ("trail-.org", "valid"),
        ("double..dot.org", "valid"),
        ("ab--cd.org", "hyphens"),
        ("social.123", "top-level"),
        ("a" * 64 + ".org", "valid"),
        (".".join(["abcdefghi"] * 26) + ".org", "too long"),
        ("emoji💥.org", "valid"),
    ],
)
def test_invalid_domains_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidDomain, match=reason.replace("?", r"\?").replace(".", r"\.")):
        normalise_domain(raw)


def test_provider_reserved_zones_are_refused() -> None:
    with pytest.raises(InvalidDomain, match="reserved"):
        normalise_domain("staff.herd-hosting.net", ["herd-hosting.net"])
    assert normalise_domain("herd-hosting.net.evil.org", ["herd-hosting.net"])


def test_unicode_form_round_trips() -> None:
    assert unicode_form("xn--bcher-kva.de") == "bücher.de"
    assert unicode_form("plain.org") == "plain.org"
