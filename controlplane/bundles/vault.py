"""Encrypting a server's secret variables with ansible-vault, so a bundle
carries them only in the form `ansible-playbook --vault-password-file` reads.

The passphrase is the organisation's: it is used here, in memory, for one
bundle and never stored or logged.
"""

from __future__ import annotations

from typing import Any

import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

VAULT_ID = "default"
MIN_PASSPHRASE = 12


def _vault(passphrase: str) -> VaultLib:
    return VaultLib([(VAULT_ID, VaultSecret(passphrase.encode()))])


def encrypt_vars(variables: dict[str, Any], passphrase: str) -> bytes:
    """A whole vars file, vault-encrypted (AES256, a fresh salt each time)."""
    text = yaml.safe_dump(variables, sort_keys=True, default_flow_style=False)
    return _vault(passphrase).encrypt(text)


def decrypt_vars(data: bytes, passphrase: str) -> dict[str, Any]:
    return yaml.safe_load(_vault(passphrase).decrypt(data)) or {}
