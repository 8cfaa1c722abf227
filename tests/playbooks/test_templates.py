"""Tests of the host templates, rendered with plain Jinja2 as the control plane does.

Run with pytest from the repository root (`python -m pytest tests/playbooks`).
The nginx and Ansible checks are skipped where nginx or ansible-playbook is
missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest

from provisioning.render import TEMPLATES, render
from tests.playbooks import nginx_check, render_equivalence
from tests.playbooks.samples import sample_vars

ENV = "home/mastodon/live/.env.production.j2"
VHOST = "etc/nginx/sites-available/mastodon.conf.j2"
CSS = "home/mastodon/live/public/herd-branding.css.j2"
PAGE = "var/www/herd/maintenance.html.j2"
BRANDING = "home/mastodon/herd/branding.rb.j2"
HERE = Path(__file__).resolve().parent


# -- dotenv as Ruby's dotenv (Rails) and Node's dotenv (streaming) read it ---------


def ruby_dotenv(text: str) -> dict[str, str]:
    """The parts of the dotenv gem's parser (3.x) that the template relies on."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(
            r"""^\s*(?:export\s+)?([\w.]+)(?:\s*=\s*?|:\s+?)"""
            r"""(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^#\n]+)?\s*(?:#.*)?$""",
            line,
        )
        if not match:
            assert not line.strip() or line.lstrip().startswith("#"), line
            continue
        key, value = match.group(1), (match.group(2) or "").strip()
        quote = value[:1] if value[:1] in "'\"" and value[-1:] == value[:1] else ""
        if quote:
            value = value[1:-1]
        if quote == '"':
            value = value.replace("\\n", "\n").replace("\\r", "\r")
            value = re.sub(r"\\([^$])", r"\1", value)
        if quote != "'":
            # Variable substitution: an escaped dollar is a dollar.
            value = re.sub(r"(\\)?\$(\{)?([A-Z0-9_]+)?(\})?", _ruby_substitute(values), value)
        values[key] = value
    return values


def _ruby_substitute(values: dict[str, str]):
    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(0)[1:]
        if match.group(3) is None:
            return match.group(0)
        return values.get(match.group(3), "")

    return substitute


def node_dotenv(text: str) -> dict[str, str]:
    """Node's dotenv (16.x): quotes removed, \\n expanded in double quotes only."""
    values: dict[str, str] = {}
    pattern = re.compile(
        r"""^\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|"""
        r"""\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?$""",
        re.MULTILINE,
    )
    for match in pattern.finditer(text):
        value = (match.group(2) or "").strip()
        quote = value[:1]
        value = re.sub(r"^(['\"`])([\s\S]*)\1$", r"\2", value)
        if quote == '"':
            value = value.replace("\\n", "\n").replace("\\r", "\r")
        values[match.group(1)] = value
    return values


TRICKY = [
    "plain-value_1.2:3/4@5+6=7%",
    "with space",
    "hash # inside",
    "dollar $HOME and ${PATH}",
    "single ' quote",
    'double " quote',
    "both ' and \"",
    "back\\slash",
    "",
]


@pytest.mark.parametrize("value", TRICKY)
def test_values_survive_rubys_dotenv(value: str) -> None:
    text = render(ENV, sample_vars(mastodon_db_password=value))
    assert ruby_dotenv(text)["DB_PASS"] == value


@pytest.mark.parametrize(
    "value",
    [v for v in TRICKY if not ("'" in v and ('"' in v or "\\" in v or "$" in v))],
)
def test_values_survive_nodes_dotenv(value: str) -> None:
    # The streaming server reads DB_* and REDIS_* with Node's dotenv, which
    # unescapes nothing: every form but the escaped one reads back the same.
    text = render(ENV, sample_vars(mastodon_db_password=value))
    assert node_dotenv(text)["DB_PASS"] == value


def test_multiline_value_survives_rubys_dotenv() -> None:
    text = render(ENV, sample_vars(mastodon_env_extra={"SOME_TEXT": "line 1\nline 2"}))
    assert ruby_dotenv(text)["SOME_TEXT"] == "line 1\nline 2"


def test_env_has_every_required_setting_and_nothing_removed_in_44() -> None:
    values = ruby_dotenv(render(ENV, sample_vars(mastodon_env_extra={"REDIS_NAMESPACE": "x"})))
    for key in (
        "LOCAL_DOMAIN",
        "SECRET_KEY_BASE",
        "VAPID_PRIVATE_KEY",
        "VAPID_PUBLIC_KEY",
        "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY",
        "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT",
        "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY",
        "DB_HOST",
        "DB_NAME",
        "DB_USER",
        "DB_PASS",
        "REDIS_DB",
        "RAILS_ENV",
        "NODE_ENV",
    ):
        assert values.get(key), key
    assert "OTP_SECRET" not in values
    assert "REDIS_NAMESPACE" not in values
    assert values["REDIS_DB"] == "3"
    assert values["RAILS_ENV"] == values["NODE_ENV"] == "production"


def test_env_says_it_is_managed_by_herd() -> None:
    assert render(ENV, sample_vars()).startswith("# Managed by Herd")


def test_oidc_settings() -> None:
    values = ruby_dotenv(render(ENV, sample_vars(mastodon_web_domain="web.example.org")))
    assert values["OIDC_ENABLED"] == "true"
    assert values["OIDC_SCOPE"] == "openid,profile,email"
    assert values["OIDC_REDIRECT_URI"] == (
        "https://web.example.org/auth/auth/openid_connect/callback"
    )
    assert values["OMNIAUTH_ONLY"] == values["ONE_CLICK_SSO_LOGIN"] == "true"
    off = ruby_dotenv(render(ENV, sample_vars(mastodon_oidc_enabled=False)))
    assert off["OIDC_ENABLED"] == "false"
    assert not [key for key in off if key.startswith("OIDC_") and key != "OIDC_ENABLED"]


def test_one_click_sign_in_needs_omniauth_only() -> None:
    values = ruby_dotenv(render(ENV, sample_vars(mastodon_omniauth_only=False)))
    assert "ONE_CLICK_SSO_LOGIN" not in values


def test_s3_settings_only_when_enabled() -> None:
    values = ruby_dotenv(render(ENV, sample_vars()))
    assert values["S3_ENABLED"] == "true"
    assert values["AWS_SECRET_ACCESS_KEY"] == sample_vars()["mastodon_s3_secret_access_key"]
    off = ruby_dotenv(render(ENV, sample_vars(mastodon_s3_enabled=False)))
    assert off["S3_ENABLED"] == "false"
    assert "AWS_ACCESS_KEY_ID" not in off


def test_empty_s3_permission_is_written_empty() -> None:
    values = ruby_dotenv(render(ENV, sample_vars(mastodon_s3_permission="")))
    assert values["S3_PERMISSION"] == ""


def test_redis_url_replaces_host_and_port() -> None:
    values = ruby_dotenv(render(ENV, sample_vars(mastodon_redis_url="redis://r.internal:6379/4")))
    assert values["REDIS_URL"] == "redis://r.internal:6379/4"
    assert "REDIS_HOST" not in values


def test_templates_refuse_missing_required_values() -> None:
    values = sample_vars()
    del values["mastodon_secret_key_base"]
    with pytest.raises(jinja2.UndefinedError):
        render(ENV, values)


# -- units ------------------------------------------------------------------------


def test_units_carry_ports_users_and_paths() -> None:
    values = sample_vars()
    web = render("etc/systemd/system/mastodon-web.service.j2", values)
    assert "User=mastodon0\n" in web
    assert 'Environment="PORT=3000"' in web
    assert "ExecReload=/bin/kill -SIGUSR1 $MAINPID" in web
    assert "ReadWritePaths=/home/mastodon0/live" in web
    sidekiq = render("etc/systemd/system/mastodon-sidekiq.service.j2", values)
    assert "sidekiq -c 25" in sidekiq
    assert 'Environment="DB_POOL=25"' in sidekiq
    shim = render("etc/systemd/system/mastodon-streaming.service.j2", values)
    assert "Wants=mastodon0-streaming@4000.service mastodon0-streaming@4001.service\n" in shim
    assert "Type=oneshot" in shim
    instance = render("etc/systemd/system/mastodon-streaming@.service.j2", values)
    assert "PartOf=mastodon0-streaming.service" in instance
    assert 'Environment="PORT=%i"' in instance


# -- nginx ------------------------------------------------------------------------


def test_vhost_follows_mastodons_dist_file() -> None:
    text = render(VHOST, sample_vars())
    assert "server 127.0.0.1:3000 fail_timeout=0;" in text
    assert re.search(
        r"least_conn;\s+server 127.0.0.1:4000 fail_timeout=0;\s+server 127.0.0.1:4001", text
    )
    assert "client_max_body_size 99m;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "try_files $uri @mastodon;" in text
    assert "Content-Security-Policy \"default-src 'none'; form-action 'none'\"" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "if (-f /var/www/herd/mastodon0/maintenance.on)" in text
    assert "server_name social.example.org mastodon.example.org;" in text


def test_nginx_accepts_the_vhost(tmp_path: Path) -> None:
    # Debian's nginx, which scripts/test installs: a missing one fails here.

    for number, servers in enumerate(nginx_check.VARIANTS.values()):
        needs_new_nginx = any(server.get("mastodon_nginx_http2_on") for server in servers)
        if needs_new_nginx and nginx_check.nginx_version() < (1, 25, 1):
            continue
        result = nginx_check.check(servers, tmp_path / f"v{number}")
        assert result.returncode == 0, result.stderr


# -- branding ---------------------------------------------------------------------


def test_colours_that_are_not_hex_fall_back() -> None:
    css = render(CSS, sample_vars(mastodon_branding_primary_color="red;} body{display:none"))
    assert "display:none" not in css.split("/* The organisation's custom CSS */")[0]
    assert "--herd-primary: #6364ff;" in css


def test_maintenance_page_escapes_text() -> None:
    page = render(PAGE, sample_vars(mastodon_maintenance_message="<script>x</script>"))
    assert "<script>x" not in page
    assert "&lt;script&gt;" in page
    assert "<link" not in page  # self-contained
    assert "src=" not in page


def test_branding_script_strings_are_ruby_and_json_safe() -> None:
    script = render(
        BRANDING,
        sample_vars(
            mastodon_site_title='Say "#{`rm -rf /`}"',
            mastodon_owner_username="admin",
            mastodon_branding_settings_extra={"trends": True},
        ),
    )
    title = re.search(r"^  site_title: (\".*\"),$", script, re.MULTILINE)
    assert title is not None
    assert "#" not in title.group(1)  # no interpolation possible
    import json

    assert json.loads(title.group(1)) == 'Say "#{`rm -rf /`}"'
    assert '  trends: "1",' in script
    assert "Form::AdminSettings.new(" in script
    assert "form.save" in script


def test_contact_is_saved_only_with_a_user_name() -> None:
    without = render(BRANDING, sample_vars(mastodon_site_contact_username=""))
    assert "site_contact_email" not in without
    with_owner = render(
        BRANDING, sample_vars(mastodon_site_contact_username="", mastodon_owner_username="boss")
    )
    assert '  site_contact_username: "boss",' in with_owner


# -- both renderers ---------------------------------------------------------------


def test_ansible_renders_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    assert render_equivalence.main() == 0, capsys.readouterr().out


def test_every_template_is_documented() -> None:
    readme = (TEMPLATES / "README.md").read_text()
    for path in TEMPLATES.rglob("*.j2"):
        assert str(path.relative_to(TEMPLATES)) in readme, path
