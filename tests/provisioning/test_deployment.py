"""The manifest of managed files against the roles that deploy them, and
rendering and masking without a host or a database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta

from provisioning.deployment import (
    MANAGED_FILES,
    SECRET_VARIABLES,
    effective_variables,
    preview_files,
    render_files,
    secret_values,
)
from provisioning.redaction import MASK, MAX_STRING
from provisioning.render import TEMPLATES, render, template_names
from tests.playbooks.samples import sample_vars

ROLES = Path(__file__).resolve().parents[2] / "playbooks" / "roles"
TEMPLATES_DIR = "{{ mastodon_templates_dir }}/"


def _tasks(tasks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield task
        for section in ("block", "rescue", "always"):
            yield from _tasks(task.get(section) or [])


def _with_item(text: str, item: dict[str, str] | None) -> str:
    for key, value in (item or {}).items():
        text = text.replace(f"{{{{ item.{key} }}}}", value)
    return text


def template_tasks() -> set[tuple[str, ...]]:
    """Every ansible.builtin.template task of every role, loops unrolled:
    (role, template, dest, owner, group, mode) as the task writes them."""
    found = set()
    for path in sorted(ROLES.glob("*/tasks/*.yml")):
        role = path.parents[1].name
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            args = task.get("ansible.builtin.template")
            if args is None:
                continue
            for item in task.get("loop") or [None]:
                src = _with_item(args["src"], item)
                assert src.startswith(TEMPLATES_DIR), src
                found.add(
                    (
                        role,
                        src.removeprefix(TEMPLATES_DIR),
                        _with_item(args["dest"], item),
                        args["owner"],
                        args["group"],
                        args["mode"],
                    )
                )
    return found


def test_the_manifest_is_the_roles_template_tasks() -> None:
    manifest = {(f.role, f.template, f.dest, f.owner, f.group, f.mode) for f in MANAGED_FILES}
    assert manifest == template_tasks()


def test_every_template_is_managed() -> None:
    assert sorted(f.template for f in MANAGED_FILES) == template_names()


def test_the_secret_variables_are_those_the_readme_marks_secret() -> None:
    marked = set()
    for line in (TEMPLATES / "README.md").read_text().splitlines():
        cells = line.split("|")
        if len(cells) > 3 and "secret" in cells[2]:
            marked |= set(re.findall(r"`(mastodon_\w+)`", cells[1]))
    assert marked == SECRET_VARIABLES


def test_only_files_marked_secret_read_secret_variables() -> None:
    env = jinja2.Environment()
    for managed in MANAGED_FILES:
        source = (TEMPLATES / managed.template).read_text()
        used = meta.find_undeclared_variables(env.parse(source))
        assert bool(used & SECRET_VARIABLES) == managed.secret, managed.template


def test_role_defaults_follow_the_given_variables() -> None:
    values = effective_variables(
        {"mastodon_local_domain": "a.example", "mastodon_user": "mastodon7", "x": "{{ y }}"}
    )
    # Defaults that name other defaults, several levels deep.
    assert values["mastodon_live_dir"] == "/home/mastodon7/live"
    assert values["mastodon_maintenance_flag"] == "/var/www/herd/mastodon7/maintenance.on"
    assert values["mastodon_nginx_site"] == "/etc/nginx/sites-available/mastodon7.conf"
    # A default that is one expression keeps its type, as in Ansible.
    assert values["mastodon_streaming_ports"] == [4000]
    # The TLS paths follow the mode.
    assert (
        values["mastodon_nginx_tls_certificate"] == "/etc/letsencrypt/live/a.example/fullchain.pem"
    )
    self_signed = effective_variables(
        {"mastodon_local_domain": "a.example", "mastodon_nginx_tls_mode": "self_signed"}
    )
    assert self_signed["mastodon_nginx_tls_certificate_key"] == "/etc/ssl/herd/mastodon/privkey.pem"
    # Given values are data, never templates.
    assert values["x"] == "{{ y }}"


def test_the_branding_values_the_role_computes() -> None:
    given = sample_vars(mastodon_branding_image_files={"favicon": "/srv/brand/icon.v2.png"})
    # The sample gives both computed values (for rendering a template alone).
    del given["mastodon_branding_images"], given["mastodon_branding_css"]
    values = effective_variables(given)
    assert values["mastodon_branding_images"] == {
        "favicon": "/home/mastodon0/herd/branding/favicon.png"
    }
    css = render("home/mastodon/live/public/herd-branding.css.j2", values)
    assert values["mastodon_branding_css"] == css


def test_rendered_files_carry_their_place_and_digest() -> None:
    files = {f.template: f for f in render_files(sample_vars())}
    env = files["home/mastodon/live/.env.production.j2"]
    assert (env.path, env.owner, env.group, env.mode, env.secret) == (
        "/home/mastodon0/live/.env.production",
        "mastodon0",
        "mastodon0",
        "0600",
        True,
    )
    unit = files["etc/systemd/system/mastodon-streaming@.service.j2"]
    assert unit.path == "/etc/systemd/system/mastodon0-streaming@.service"
    assert len({f.sha256 for f in files.values()}) == len(files)


def test_the_preview_masks_every_secret_however_it_is_written() -> None:
    # The sample's passwords hold quotes, `$`, `#` and spaces, so the file
    # writes them quoted or escaped; one is shorter than the Redactor's floor.
    variables = sample_vars(
        mastodon_smtp_password="s$3'x",
        mastodon_redis_url="redis://:hunter22@redis.internal:6379/3",
        mastodon_env_extra={"PARTNER_API_TOKEN": "tok-0123456789", "PLAIN": "visible-value"},
    )
    previews = preview_files(variables)
    text = "".join(p.content for p in previews)
    for value in secret_values(variables):
        assert value not in text
    assert "hunter22" not in text
    assert "s$3" not in text
    env = next(p for p in previews if p.template.endswith(".env.production.j2"))
    assert f"SECRET_KEY_BASE={MASK}" in env.content
    assert f"PARTNER_API_TOKEN={MASK}" in env.content
    assert "PLAIN=visible-value" in env.content
    assert env.secret
    assert env.sha256 is None


def test_files_without_secrets_preview_exactly_as_rendered() -> None:
    # A stylesheet line far past the Redactor's limit stays whole.
    css = "a{color:red}" * (MAX_STRING // 6)
    variables = sample_vars(mastodon_branding_custom_css=css)
    rendered = {f.template: f for f in render_files(variables)}
    for preview in preview_files(variables):
        if preview.secret:
            continue
        assert preview.content == rendered[preview.template].content, preview.template
        assert preview.sha256 == rendered[preview.template].sha256


def test_a_stored_secret_in_an_unexpected_place_is_masked_too() -> None:
    variables = sample_vars(mastodon_site_title="Leaked 0123456789abcdef")
    previews = preview_files(variables, known_secrets=["0123456789abcdef"])
    page = next(p for p in previews if p.template.endswith("maintenance.html.j2"))
    assert "0123456789abcdef" not in page.content
    assert MASK in page.content
    assert page.secret
    assert page.sha256 is None
