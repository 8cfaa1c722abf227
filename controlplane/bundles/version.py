"""The bundle's version and changelog. The version moves with every change to
what a bundle holds or how it is laid out; playbooks/CHANGELOG.md says what
changed, newest first, and a test holds its first entry to this constant."""

from __future__ import annotations

from pathlib import Path

BUNDLE_VERSION = "1.3.0"
# The manifest's own layout; a verifier refuses a format it does not know.
MANIFEST_FORMAT = 1
PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
CHANGELOG = PLAYBOOKS_DIR / "CHANGELOG.md"


def changelog() -> str:
    return CHANGELOG.read_text()
