from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, StringConstraints

from controlplane.fleet.models import HostState
from controlplane.schemas import Input, LabelKey, LabelValue, Output

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        if _HOSTNAME.match(value):
            return value.lower()
    raise ValueError("give an IP address or a host name")


def _private_key(value: SecretStr) -> SecretStr:
    text = value.get_secret_value().strip()
    if not (text.startswith("-----BEGIN ") and "PRIVATE KEY-----" in text):
        raise ValueError("expected a PEM or OpenSSH private key")
    return SecretStr(text + "\n")


HostName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]
Address = Annotated[str, StringConstraints(max_length=253), AfterValidator(_address)]
SshUser = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
PrivateKey = Annotated[SecretStr, Field(max_length=16384), AfterValidator(_private_key)]
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=32)]


class HostCreate(Input):
    name: HostName
    address: Address
    ssh_port: int = Field(default=22, ge=1, le=65535)
    ssh_user: SshUser = "root"
    ssh_private_key: PrivateKey | None = Field(
        default=None, description="Write-only; stored encrypted and never returned."
    )
    capacity: int = Field(default=10, ge=0, le=10_000)
    web_port_base: int = Field(default=3000, ge=1024, le=60000)
    streaming_port_base: int = Field(default=4000, ge=1024, le=60000)
    labels: Labels = Field(default_factory=dict)


class Ec2HostLaunch(Input):
    name: HostName
    image_id: Annotated[str, StringConstraints(pattern=r"^ami-[0-9a-f]{8,17}$")]
    instance_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+[.][a-z0-9]+$")]
    subnet_id: Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")] | None = None
    key_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    security_group_ids: list[Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")]] = (
        Field(default_factory=list, max_length=5)
    )
    ssh_user: SshUser = "admin"
    ssh_private_key: PrivateKey | None = None
    capacity: int = Field(default=10, ge=1, le=10_000)
    labels: Labels = Field(default_factory=dict)


class HostUpdate(Input):
    address: Address | None = None
    ssh_port: int | None = Field(default=None, ge=1, le=65535)
    ssh_user: SshUser | None = None
    ssh_private_key: PrivateKey | None = None
    capacity: int | None = Field(default=None, ge=0, le=10_000)
    labels: Labels | None = None
    state: HostState | None = None


class HostOut(Output):
    id: uuid.UUID
    name: str
    address: str
    ssh_port: int
    ssh_user: str
    has_ssh_key: bool
    capacity: int
    web_port_base: int
    streaming_port_base: int
    servers: int
    labels: dict[str, str]
    state: HostState
    provider: str
    provider_ref: str | None
    created_at: datetime
