"""Turning registered hosts into an Ansible inventory."""

from __future__ import annotations

from controlplane.crypto import secret_box
from controlplane.fleet.models import Host
from provisioning.ansible import Inventory


def inventory_for(hosts: list[Host], per_host_vars: dict[str, dict] | None = None) -> Inventory:
    entries: dict[str, dict] = {}
    keys: dict[str, str] = {}
    for host in hosts:
        entries[host.name] = {
            "ansible_host": host.address,
            "ansible_port": host.ssh_port,
            "ansible_user": host.ssh_user,
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new "
            "-o UserKnownHostsFile=/dev/null -o ConnectTimeout=10",
            **(per_host_vars or {}).get(host.name, {}),
        }
        if host.ssh_private_key_encrypted:
            keys[host.name] = secret_box().decrypt(host.ssh_private_key_encrypted)
    return Inventory(hosts=entries, ssh_keys=keys)
