from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from controlplane.bundles.vault import MIN_PASSPHRASE
from controlplane.schemas import Input, Output


class BundleRequest(Input):
    include_secrets: bool = False
    # The organisation's own: it encrypts the secrets and is then forgotten.
    vault_passphrase: SecretStr | None = Field(
        default=None, min_length=MIN_PASSPHRASE, max_length=1024
    )

    @model_validator(mode="after")
    def _passphrase_with_secrets(self) -> BundleRequest:
        if self.include_secrets and self.vault_passphrase is None:
            raise ValueError("include_secrets needs a vault_passphrase to encrypt them with")
        if not self.include_secrets and self.vault_passphrase is not None:
            raise ValueError("a vault_passphrase is only used with include_secrets")
        return self


class SigningKeyOut(Output):
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key_pem: str
    # SHA256:<Base64 of the SHA-256 of the raw key>, to compare out of band.
    fingerprint: str


class HostRecap(Input):
    host: str = Field(min_length=1, max_length=255)
    ok: int = Field(ge=0)
    changed: int = Field(ge=0)
    unreachable: int = Field(ge=0)
    failed: int = Field(ge=0)
    skipped: int = Field(ge=0)
    rescued: int = Field(default=0, ge=0)
    ignored: int = Field(default=0, ge=0)


class ReportCreate(Input):
    playbook: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,195}\.ya?ml$")
    status: Literal["succeeded", "failed"]
    bundle_version: str = Field(min_length=1, max_length=40)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    hosts: list[HostRecap] = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_line_per_host(self) -> ReportCreate:
        names = [h.host for h in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError("each host appears once in a PLAY RECAP")
        if self.started_at and self.finished_at and self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        return self


class ReportOut(Output):
    id: uuid.UUID
    organisation_id: uuid.UUID
    playbook: str
    status: str
    bundle_version: str
    started_at: datetime | None
    finished_at: datetime | None
    hosts: list[dict[str, Any]]
    received_at: datetime
    reported_by_user_id: uuid.UUID | None
