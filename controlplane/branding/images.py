"""Branding images on disk: data_dir/branding/<sha256><ext>, written whole
(temporary file, then rename) so a reader never sees half a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from controlplane.branding.checks import IMAGE_TYPES
from controlplane.settings import get_settings


def folder() -> Path:
    return get_settings().data_dir / "branding"


def path_of(sha256: str, content_type: str) -> Path:
    return folder() / f"{sha256}{IMAGE_TYPES[content_type]}"


def store(data: bytes, content_type: str) -> str:
    """Keep the bytes; their SHA-256 names them."""
    sha256 = hashlib.sha256(data).hexdigest()
    target = path_of(sha256, content_type)
    if target.exists():
        return sha256
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return sha256
