from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from controlplane.schemas import Input, Output
from controlplane.servers.schemas import ShortDescription, Title

Colour = Annotated[
    str,
    StringConstraints(pattern=r"^(#[0-9a-fA-F]{6})?$"),
    Field(description='"#rrggbb", or "" for the default', examples=["#1f4fbf"]),
]


class BrandingIn(Input):
    """The whole branding but the images: a field left out takes its default
    (no colour, no CSS); `title` and `description` left out stay as they are."""

    primary_color: Colour = ""
    accent_color: Colour = ""
    background_color: Colour = ""
    text_color: Colour = ""
    # Bounded by HERD_BRANDING_CSS_MAX_BYTES; `</style` and remote @import
    # are refused.
    custom_css: Annotated[str, StringConstraints(max_length=1_000_000)] = ""
    title: Title | None = None
    description: ShortDescription | None = None


class ImageOut(Output):
    sha256: str
    content_type: str


class BrandingOut(Output):
    server_id: uuid.UUID
    primary_color: str
    accent_color: str
    background_color: str
    text_color: str
    custom_css: str
    title: str
    description: str
    logo: ImageOut | None
    background: ImageOut | None
    job_id: uuid.UUID | None = Field(
        description="The `brand` job applying it to the running server, if one is under way"
    )
