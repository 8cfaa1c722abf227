from __future__ import annotations

import uuid

from controlplane.schemas import Output


class PreviewFileOut(Output):
    path: str
    template: str
    owner: str
    group: str
    mode: str
    # The file holds secrets: they are masked in `content`, and `sha256` is withheld.
    secret: bool
    sha256: str | None
    content: str


class PreviewOut(Output):
    server_id: uuid.UUID
    domain: str
    # What stands in for every secret value in `content`.
    mask: str
    files: list[PreviewFileOut]
