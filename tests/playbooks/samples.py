"""A complete, valid set of role variables for rendering the templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SAMPLE_VARS = Path(__file__).resolve().parent / "sample_vars.yml"


def sample_vars(**overrides: Any) -> dict[str, Any]:
    values = yaml.safe_load(SAMPLE_VARS.read_text())
    values.update(overrides)
    return values
