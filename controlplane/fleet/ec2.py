"""Hosts created on EC2 (or any EC2-compatible API) instead of registered by
hand.

Launching uses the host's id as EC2's ClientToken, so a retried launch (a
worker killed after the call, a lost answer) returns the instance the first
call created instead of starting a second one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Ec2Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERD_EC2_", extra="ignore")

    region: str = "eu-central-1"
    # For EC2-compatible clouds and for tests (moto); AWS itself needs none.
    endpoint_url: str | None = None


class Ec2Error(Exception):
    """EC2 refused or could not be reached; the message says which."""


@dataclass(frozen=True)
class LaunchSpec:
    image_id: str
    instance_type: str
    subnet_id: str | None = None
    key_name: str | None = None
    security_group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    address: str | None


@lru_cache
def _client(region: str, endpoint_url: str | None) -> Any:
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def client() -> Any:
    settings = Ec2Settings()
    return _client(settings.region, settings.endpoint_url)


def launch(host_id: uuid.UUID, name: str, spec: LaunchSpec) -> Instance:
    tags = [
        {"Key": "Name", "Value": name},
        {"Key": "herd:host-id", "Value": str(host_id)},
        {"Key": "herd:managed", "Value": "true"},
    ]
    arguments: dict[str, Any] = {
        "ImageId": spec.image_id,
        "InstanceType": spec.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": str(host_id),
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
        "MetadataOptions": {"HttpTokens": "required"},
    }
    if spec.subnet_id:
        arguments["SubnetId"] = spec.subnet_id
    if spec.key_name:
        arguments["KeyName"] = spec.key_name
    if spec.security_group_ids:
        arguments["SecurityGroupIds"] = list(spec.security_group_ids)
    try:
        answer = client().run_instances(**arguments)
    except (ClientError, BotoCoreError) as exc:
        raise Ec2Error(f"launching {name} failed: {exc}") from exc
    return _instance(answer["Instances"][0])


def find_for_host(host_id: uuid.UUID) -> Instance | None:
    """The live instance already launched for this host, if any. Tags are
    applied atomically at launch, so this finds an instance whose launch
    answer was lost; ClientToken covers the same case on AWS, but not every
    EC2-compatible API honours it."""
    try:
        answer = client().describe_instances(
            Filters=[
                {"Name": "tag:herd:host-id", "Values": [str(host_id)]},
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped"],
                },
            ]
        )
    except (ClientError, BotoCoreError) as exc:
        raise Ec2Error(f"looking for the instance of host {host_id} failed: {exc}") from exc
    found = [i for r in answer["Reservations"] for i in r["Instances"]]
    return _instance(found[0]) if found else None


def describe(instance_id: str) -> Instance:
    try:
        answer = client().describe_instances(InstanceIds=[instance_id])
    except (ClientError, BotoCoreError) as exc:
        raise Ec2Error(f"describing {instance_id} failed: {exc}") from exc
    return _instance(answer["Reservations"][0]["Instances"][0])


def terminate(instance_id: str) -> None:
    try:
        client().terminate_instances(InstanceIds=[instance_id])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidInstanceID.NotFound":
            raise Ec2Error(f"terminating {instance_id} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise Ec2Error(f"terminating {instance_id} failed: {exc}") from exc


def _instance(data: dict[str, Any]) -> Instance:
    # Herd reaches hosts over their private address when it has one: the
    # control plane normally lives in the same network as its fleet.
    address = data.get("PrivateIpAddress") or data.get("PublicIpAddress")
    return Instance(data["InstanceId"], data["State"]["Name"], address)
