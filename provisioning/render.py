"""Render Herd's host templates (templates/) with plain Jinja2.

Ansible deploys the same files with its template module; the control plane
renders them here to preview a change and to detect drift on a host. Both
must produce the same bytes (tests/playbooks/render_equivalence.py checks
it), so this environment matches what Ansible's template module does with
`lstrip_blocks: true`, which every role sets: trim_blocks and a kept
trailing newline are Ansible's defaults. The templates need no custom
filter and no Ansible lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@cache
def environment(templates: Path = TEMPLATES) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        # A missing required variable is an error, never an empty line.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (configuration files; the page escapes itself)
    )


def render(template: str, variables: Mapping[str, Any], templates: Path = TEMPLATES) -> str:
    return environment(templates).get_template(template).render(**variables)


def template_names(templates: Path = TEMPLATES) -> list[str]:
    return sorted(str(p.relative_to(templates)) for p in templates.rglob("*.j2"))
