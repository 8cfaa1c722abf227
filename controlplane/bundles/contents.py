"""What goes into an organisation's bundle: the playbooks with their roles,
the templates, an inventory of its servers and each server's variables.

Layout, run from the unpacked folder with
`ansible-playbook -i inventory upgrade.yml`:

    ansible.cfg, *.yml, roles/, README.md, CHANGELOG.md   (playbooks/)
    templates/                                             (templates/)
    branding/<domain>/                   the server's branding images, if any
    inventory/hosts.yml                  one host per server, named by its domain
    inventory/group_vars/all.yml         where the roles find templates/
    inventory/host_vars/<domain>/main.yml      the server's variables, no secrets
    inventory/host_vars/<domain>/vault.yml   with secrets: ansible-vault encrypted
    manifest.json, manifest.json.sig

The variables are exactly those Herd's own runs pass
(provisioning/variables.py::deployment_variables), so an in-house run
deploys what Herd would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, col, select

from controlplane.bundles.vault import encrypt_vars
from controlplane.bundles.version import PLAYBOOKS_DIR, TEMPLATES_DIR
from controlplane.fleet.models import Host
from controlplane.rollouts.models import CatalogueRelease, ReleaseSeries
from controlplane.rollouts.releases import is_supported, parse_tag
from controlplane.servers import secrets as server_secrets
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from provisioning.deployment import ENV_EXTRA, SECRET_VARIABLES, secret_values
from provisioning.variables import deployment_variables

# Servers that run on a host: the ones a team could run a playbook against.
_RUNNING = (
    ServerState.provisioning,
    ServerState.active,
    ServerState.upgrading,
    ServerState.suspended,
    ServerState.failed,
)
GROUP = "mastodon"
IMAGES = "mastodon_branding_image_files"
# Tool litter, never part of the playbooks (templates such as .env.production.j2
# do start with a dot, so hidden names in general stay).
_SKIPPED_NAMES = {"__pycache__", ".DS_Store", ".git", ".pytest_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".retry", ".swp", "~")


@dataclass(frozen=True)
class BundleServer:
    name: str
    server_id: uuid.UUID
    version: str


def _tree(root: Path, prefix: str) -> dict[str, bytes]:
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if set(relative.parts) & _SKIPPED_NAMES or path.name.endswith(_SKIPPED_SUFFIXES):
            continue
        if path.is_file():
            files[prefix + relative.as_posix()] = path.read_bytes()
    return files


def source_files() -> dict[str, bytes]:
    """playbooks/ at the bundle's root, templates/ beside them."""
    return {**_tree(PLAYBOOKS_DIR, ""), **_tree(TEMPLATES_DIR, "templates/")}


def supported_releases(session: Session) -> list[str]:
    """The catalogue's releases in supported series, newest first; the
    release new servers get when staff keep no catalogue."""
    today = date.today()
    series = {s.series: s for s in session.exec(select(ReleaseSeries)).all()}
    tags = [
        row.tag
        for row in session.exec(select(CatalogueRelease)).all()
        if is_supported(series.get(row.series), today)
    ]
    if not tags:
        return [get_settings().mastodon_version]
    return sorted(tags, key=lambda tag: parse_tag(tag).sort_key(), reverse=True)


def _connection(host: Host) -> dict[str, Any]:
    # The connection variables provisioning/hosts.py::inventory_for gives
    # Herd's runs, without the host's SSH key: the team connects with its own.
    return {
        "ansible_host": host.address,
        "ansible_port": host.ssh_port,
        "ansible_user": host.ssh_user,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new "
        "-o UserKnownHostsFile=/dev/null -o ConnectTimeout=10",
    }


def split_secrets(variables: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain, secret): the secret variables Herd masks in previews, and
    mastodon_env_extra whole when any of its entries is a secret."""
    secret = {name: variables[name] for name in SECRET_VARIABLES if name in variables}
    extra = variables.get(ENV_EXTRA) or {}
    values = set(secret_values(variables))
    if any(str(value) in values for value in extra.values()):
        secret[ENV_EXTRA] = extra
    plain = {name: value for name, value in variables.items() if name not in secret}
    return plain, secret


def carry_images(name: str, variables: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The branding images Herd's runs copy from this machine (the
    controller), put into the bundle under branding/<domain>/ and the
    variable pointed there. An image missing here keeps its path, so the run
    fails on it as Herd's own run would."""
    images = variables.get(IMAGES) or {}
    files: dict[str, bytes] = {}
    pointed: dict[str, Any] = {}
    for setting, source in sorted(images.items()):
        path = Path(str(source))
        if not path.is_file():
            pointed[setting] = source
            continue
        inside = f"branding/{name}/{setting}{path.suffix}"
        files[inside] = path.read_bytes()
        pointed[setting] = "{{ playbook_dir }}/" + inside
    if not images:
        return variables, files
    return {**variables, IMAGES: pointed}, files


def _yaml(header: str, data: Any) -> bytes:
    body = yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return (header + body).encode()


def _placed_servers(session: Session, organisation_id: uuid.UUID) -> list[tuple[Server, Host]]:
    rows = session.exec(
        select(Server, Host)
        .join(Host, col(Host.id) == Server.host_id)
        .where(
            Server.organisation_id == organisation_id,
            col(Server.state).in_(_RUNNING),
            col(Server.slot).is_not(None),
        )
        .order_by(col(Server.domain))
    ).all()
    return [(server, host) for server, host in rows]


def inventory_files(
    session: Session, organisation_id: uuid.UUID, passphrase: str | None
) -> tuple[dict[str, bytes], list[BundleServer]]:
    """The inventory folder for the organisation's servers; secrets only
    when a passphrase is given, and then only vault-encrypted."""
    files: dict[str, bytes] = {}
    hosts: dict[str, dict[str, Any]] = {}
    servers: list[BundleServer] = []
    for server, host in _placed_servers(session, organisation_id):
        stored = server_secrets.load(session, server.id)
        if stored is None:
            continue  # placed a moment ago; its secrets come with the next step
        # A few queries per server (secrets, storage, SSO): an organisation
        # has a handful of servers, and Herd's runs read them the same way.
        variables = deployment_variables(session, server, host, stored)
        name = server.domain
        variables, images = carry_images(name, variables)
        files.update(images)
        plain, secret = split_secrets(variables)
        hosts[name] = _connection(host)
        folder = f"inventory/host_vars/{name}"
        if passphrase is None:
            header = (
                f"# {name}: its variables as Herd deploys them. Secrets are left out\n"
                f"# ({', '.join(sorted(secret))}); pull the bundle with\n"
                "# --include-secrets, or add them in a vars file of your own, before\n"
                "# running a playbook that writes the configuration.\n"
            )
        else:
            header = f"# {name}: its variables as Herd deploys them; secrets in vault.yml.\n"
            files[f"{folder}/vault.yml"] = encrypt_vars(secret, passphrase)
        files[f"{folder}/main.yml"] = _yaml(header, plain)
        servers.append(BundleServer(name, server.id, str(variables["mastodon_version"])))
    files["inventory/hosts.yml"] = _yaml(
        "# The organisation's servers: one host each, named by its domain. Servers\n"
        "# sharing a machine share its address; the playbooks tell them apart by\n"
        "# their variables (user, ports, database).\n",
        {"all": {"children": {GROUP: {"hosts": hosts}}}},
    )
    files["inventory/group_vars/all.yml"] = _yaml(
        "# The templates sit beside the playbooks in a bundle.\n",
        {"mastodon_templates_dir": "{{ playbook_dir }}/templates"},
    )
    return files, servers
