"""What Herd puts on a server's host: the manifest of managed files, and each
file rendered from the server's role variables, for the preview and for
drift detection.

MANAGED_FILES restates the roles' ansible.builtin.template tasks (template,
destination, owner, group, mode) with the very Jinja expressions those
tasks use; tests/provisioning/test_deployment.py reads the task files and
fails when the two part. Role defaults are not restated: they are read from
playbooks/roles/*/defaults/main.yml and resolved the way Ansible resolves
them, on demand and under the variables the playbook is given, so a
default changed in a role changes the preview and the drift check with it.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import meta

from provisioning.redaction import MASK, MAX_STRING, Redactor
from provisioning.render import render

ROLES = Path(__file__).resolve().parents[1] / "playbooks" / "roles"
BRANDING_CSS = "home/mastodon/live/public/herd-branding.css.j2"


@dataclass(frozen=True)
class ManagedFile:
    """One template task of a role. `dest`, `owner`, `group` and `mode` are
    Jinja, exactly as the task writes them."""

    template: str
    dest: str
    owner: str
    group: str
    mode: str
    role: str
    # The file holds the server's secrets (it gets no digest in a preview).
    secret: bool = False


def _unit(name: str) -> ManagedFile:
    # mastodon_services/tasks/units.yml loops over the four units with
    # dest "/etc/systemd/system/{{ item.unit }}".
    return ManagedFile(
        f"etc/systemd/system/{name}.j2",
        "/etc/systemd/system/{{ mastodon_service_name }}" + name.removeprefix("mastodon"),
        "root",
        "root",
        "0644",
        "mastodon_services",
    )


MANAGED_FILES: tuple[ManagedFile, ...] = (
    ManagedFile(
        "home/mastodon/live/.env.production.j2",
        "{{ mastodon_live_dir }}/.env.production",
        "{{ mastodon_user }}",
        "{{ mastodon_user }}",
        "{{ mastodon_config_env_mode }}",
        "mastodon_config",
        secret=True,
    ),
    ManagedFile(
        "etc/nginx/sites-available/mastodon.conf.j2",
        "{{ mastodon_nginx_site }}",
        "root",
        "root",
        "0644",
        "mastodon_nginx",
    ),
    _unit("mastodon-web.service"),
    _unit("mastodon-sidekiq.service"),
    _unit("mastodon-streaming.service"),
    _unit("mastodon-streaming@.service"),
    ManagedFile(
        "var/www/herd/maintenance.html.j2",
        "{{ mastodon_maintenance_dir }}/maintenance.html",
        "root",
        "root",
        "0644",
        "mastodon_maintenance",
    ),
    ManagedFile(
        BRANDING_CSS,
        "{{ mastodon_live_dir }}/public/herd-branding.css",
        "{{ mastodon_user }}",
        "{{ mastodon_user }}",
        "0644",
        "mastodon_branding",
    ),
    ManagedFile(
        "home/mastodon/herd/branding.rb.j2",
        "{{ mastodon_herd_dir }}/branding.rb",
        "root",
        "{{ mastodon_user }}",
        "0640",
        "mastodon_branding",
    ),
)

# The variables templates/README.md marks secret (a test holds the two to
# each other). mastodon_redis_url is secret only when it carries a password;
# it is treated as secret always, which costs a preview nothing.
SECRET_VARIABLES = frozenset(
    {
        "mastodon_secret_key_base",
        "mastodon_vapid_private_key",
        "mastodon_vapid_public_key",
        "mastodon_ar_deterministic_key",
        "mastodon_ar_key_derivation_salt",
        "mastodon_ar_primary_key",
        "mastodon_db_password",
        "mastodon_redis_password",
        "mastodon_redis_url",
        "mastodon_smtp_password",
        "mastodon_s3_secret_access_key",
        "mastodon_oidc_client_secret",
    }
)
ENV_EXTRA = "mastodon_env_extra"


@dataclass(frozen=True)
class RenderedFile:
    path: str
    template: str
    owner: str
    group: str
    mode: str
    secret: bool
    content: str
    sha256: str


@dataclass(frozen=True)
class PreviewFile:
    path: str
    template: str
    owner: str
    group: str
    mode: str
    secret: bool
    # Every secret value replaced by MASK.
    content: str
    # Of the file as it would be deployed; withheld (None) for a file that
    # holds secrets, since a digest lets one confirm a guessed value.
    sha256: str | None


# -- role defaults, resolved as Ansible does ---------------------------------------

_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701 (not HTML)
# "{{ expression }}" and nothing else: Ansible returns the expression's own
# value (a list, a number), not its text.
_SINGLE_EXPRESSION = re.compile(r"\{\{((?:(?!\}\}).)*)\}\}", re.DOTALL)


@cache
def role_defaults() -> dict[str, Any]:
    """The defaults of the roles that deploy managed files and of `mastodon`,
    whose defaults every role shares (they depend on it)."""
    roles = ["mastodon", *dict.fromkeys(f.role for f in MANAGED_FILES)]
    values: dict[str, Any] = {}
    for role in roles:
        values.update(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {})
    return values


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class _Resolver:
    """Role defaults under the variables a playbook is given (extra vars,
    which always win), each templated when first asked for, as Ansible's
    lazy templating does: a default may name another default. Given
    variables are plain values and are never templated."""

    def __init__(self, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> None:
        self._raw = {**defaults, **given}
        self._done: dict[str, Any] = dict(given)
        self._busy: set[str] = set()

    def get(self, name: str) -> Any:
        if name not in self._done:
            if name in self._busy:
                raise jinja2.TemplateError(f"{name} refers to itself")
            self._busy.add(name)
            try:
                self._done[name] = self._template(self._raw[name])
            finally:
                self._busy.discard(name)
        return self._done[name]

    def _template(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self._template(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._template(item) for item in value]
        if not _is_template(value):
            return value
        names = meta.find_undeclared_variables(_JINJA.parse(value))
        context = {name: self.get(name) for name in names if name in self._raw}
        single = _SINGLE_EXPRESSION.fullmatch(value.strip())
        if single is None:
            return _JINJA.from_string(value).render(context)
        result = _JINJA.compile_expression(single.group(1), undefined_to_none=False)(**context)
        if isinstance(result, jinja2.Undefined):
            raise jinja2.UndefinedError(f"'{single.group(1).strip()}' is undefined")
        return result

    def resolve(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self._raw:
            try:
                values[name] = self.get(name)
            except jinja2.TemplateError:
                # Only defaults built on Ansible's own names (playbook_dir, for
                # mastodon_templates_dir) land here; no template reads them.
                continue
        return values


def effective_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    """What the template tasks see: the given variables over the role
    defaults, plus the two values mastodon_branding computes on the host
    (an extra var beats set_fact, so a given value stays)."""
    values = _Resolver(role_defaults(), variables).resolve()
    if "mastodon_branding_images" not in variables:
        # The role copies each image to <herd dir>/branding/<setting><ext>.
        folder = f"{values['mastodon_herd_dir']}/branding"
        values["mastodon_branding_images"] = {
            setting: f"{folder}/{setting}{posixpath.splitext(str(source))[1]}"
            for setting, source in (values.get("mastodon_branding_image_files") or {}).items()
        }
    if "mastodon_branding_css" not in variables:
        # The role reads the deployed stylesheet back into custom_css.
        values["mastodon_branding_css"] = render(BRANDING_CSS, values)
    return values


# -- rendering ------------------------------------------------------------------------


def _expand(expression: str, values: Mapping[str, Any]) -> str:
    return _JINJA.from_string(expression).render(values)


def render_files(variables: Mapping[str, Any]) -> list[RenderedFile]:
    """Every managed file as the playbooks would deploy it with `variables`
    (the mapping they get as extra vars)."""
    values = effective_variables(variables)
    files = []
    for managed in MANAGED_FILES:
        content = render(managed.template, values)
        files.append(
            RenderedFile(
                path=_expand(managed.dest, values),
                template=managed.template,
                owner=_expand(managed.owner, values),
                group=_expand(managed.group, values),
                mode=_expand(managed.mode, values),
                secret=managed.secret,
                content=content,
                sha256=hashlib.sha256(content.encode()).hexdigest(),
            )
        )
    return files


def _secret_extra_keys(extra: Mapping[str, Any]) -> set[str]:
    # The Redactor's own rule for which names hold secrets (…_TOKEN,
    # …_PASSWORD, …_KEY), so mastodon_env_extra is judged as job events are.
    screened = Redactor().value({str(key): value for key, value in extra.items()})
    return {str(key) for key in extra if screened[str(key)] == MASK and extra[key] != MASK}


def secret_values(variables: Mapping[str, Any]) -> list[str]:
    """Every secret value in `variables`: the secret variables' and those of
    mastodon_env_extra entries whose names say they are secret."""
    values = [
        variables[name]
        for name in SECRET_VARIABLES
        if isinstance(variables.get(name), str) and variables[name]
    ]
    extra = variables.get(ENV_EXTRA) or {}
    values += [str(extra[key]) for key in _secret_extra_keys(extra) if str(extra[key])]
    return values


def _hide_secrets(variables: Mapping[str, Any], placeholder: str) -> dict[str, Any]:
    hidden = dict(variables)
    for name in SECRET_VARIABLES:
        if isinstance(hidden.get(name), str) and hidden[name]:
            hidden[name] = placeholder
    extra = variables.get(ENV_EXTRA) or {}
    secret_keys = _secret_extra_keys(extra)
    if secret_keys:
        hidden[ENV_EXTRA] = {
            key: placeholder if str(key) in secret_keys else value for key, value in extra.items()
        }
    return hidden


def _redact(text: str, redactor: Redactor, known: list[str]) -> str:
    # The Redactor shortens what it is given past MAX_STRING (it was made for
    # log lines), so a file goes through it a line at a time, and a longer
    # line only when it holds a secret (shortened then, never leaked).
    return "".join(
        redactor.text(line) if len(line) <= MAX_STRING or any(s in line for s in known) else line
        for line in text.splitlines(keepends=True)
    )


def preview_files(
    variables: Mapping[str, Any], known_secrets: Iterable[str] = ()
) -> list[PreviewFile]:
    """The managed files as render_files would give them, with every secret
    value replaced by MASK.

    Secret values never reach the templates here: each secret variable is
    rendered as a placeholder that every template writes verbatim (letters
    and digits need no quoting or escaping), which then becomes the mask, so
    a secret cannot slip through in a quoted or escaped form, however short.
    The Redactor then takes out any of `known_secrets` (the server's stored
    secrets) that reached a file through some other variable.
    """
    placeholder = f"HerdMasked{secrets.token_hex(12)}"
    known = [*known_secrets, *secret_values(variables)]
    redactor = Redactor(known)
    previews = []
    for file in render_files(_hide_secrets(variables, placeholder)):
        masked = file.content.replace(placeholder, MASK)
        shown = _redact(masked, redactor, known)
        holds_secrets = file.secret or placeholder in file.content or shown != masked
        previews.append(
            PreviewFile(
                path=file.path,
                template=file.template,
                owner=file.owner,
                group=file.group,
                mode=file.mode,
                secret=holds_secrets,
                content=shown,
                sha256=None if holds_secrets else file.sha256,
            )
        )
    return previews
