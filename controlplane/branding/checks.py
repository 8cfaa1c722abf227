"""What branding input Herd accepts: colours as #rrggbb, custom CSS that
cannot leave its <style> element or pull in another site's stylesheet, and
images whose bytes (not their name or declared type) say PNG, JPEG or WebP."""

from __future__ import annotations

import re

from controlplane.problems import HerdError, InvalidInput, PayloadTooLarge

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Declared type → extension on disk (the role keeps it when copying).
IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}

_COMMENT = re.compile(r"/\*.*?(\*/|$)", re.DOTALL)
_HEX_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})[ \t\n\r\f]?")
_CHAR_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
# @import of an absolute or scheme-relative URL, quoted or in url(...).
_REMOTE_IMPORT = re.compile(
    r"@import\s*(?:url\(\s*)?['\"]?\s*(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE
)


class UnsupportedImage(HerdError):
    status, kind, title = 415, "unsupported-media-type", "Unsupported image type"


def colour(name: str, value: str) -> str:
    value = value.strip()
    if value and not COLOUR.match(value):
        raise InvalidInput(f"{name} must be a colour as #rrggbb, not {value[:20]!r}", field=name)
    return value.lower()


def _unescape(css: str) -> str:
    def hex_char(match: re.Match[str]) -> str:
        code = int(match.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"

    return _CHAR_ESCAPE.sub(r"\1", _HEX_ESCAPE.sub(hex_char, css))


def custom_css(css: str, max_bytes: int) -> str:
    """The CSS as given, or InvalidInput. Mastodon serves custom CSS inside
    its own pages, so `</style` would end the element and let markup in;
    and a remote @import would make every visitor's browser fetch a
    stylesheet from a site nobody reviewed. Comments and CSS escapes are
    undone first, as a browser would, so `@\\69mport` is caught too."""
    if len(css.encode()) > max_bytes:
        raise InvalidInput(f"custom CSS is limited to {max_bytes} bytes", field="custom_css")
    if "</style" in css.lower():
        raise InvalidInput("custom CSS cannot contain '</style'", field="custom_css")
    if _REMOTE_IMPORT.search(_unescape(_COMMENT.sub("", css))):
        raise InvalidInput(
            "custom CSS cannot @import a stylesheet from another site", field="custom_css"
        )
    return css


def sniff(data: bytes) -> str | None:
    """The image type the bytes themselves declare, if it is one Herd takes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image(declared: str | None, data: bytes, max_bytes: int) -> str:
    """The checked image type, or an error: a type Herd does not take (SVG
    can carry scripts, so it is refused with everything else), too large, or
    bytes that are not what the Content-Type says."""
    content_type = (declared or "").split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        raise UnsupportedImage(
            f"images must be PNG, JPEG or WebP (Content-Type {', '.join(IMAGE_TYPES)}), "
            f"not {content_type or 'untyped'}"
        )
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"images are limited to {max_bytes} bytes")
    if not data:
        raise InvalidInput("the image is empty")
    actual = sniff(data)
    if actual != content_type:
        raise InvalidInput(
            f"the file is not a {content_type.removeprefix('image/').upper()} image"
            + (f" (its bytes say {actual})" if actual else "")
        )
    return content_type
