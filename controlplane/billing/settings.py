"""Billing settings, from `HERD_STRIPE_*` and `HERD_BILLING_*` variables.

Billing is off until HERD_STRIPE_API_KEY is set: orders then wait for staff
approval as before. With a key, an order waits for Stripe to say it is paid.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from controlplane.settings import PLACEHOLDER_SECRETS


class BillingSettings(BaseSettings):
    # Errors leave the input out, so a refused key never reaches a log.
    model_config = SettingsConfigDict(
        env_prefix="HERD_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    stripe_api_key: SecretStr | None = Field(default=None, repr=False)
    # Where the SDK sends requests; None is Stripe itself. Tests point it at
    # localstripe.
    stripe_api_base: str | None = None
    stripe_webhook_secret: SecretStr | None = Field(default=None, repr=False)
    # How old a signed delivery may be (Stripe's own default is 300 s); older
    # ones are refused as replays.
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    # Where Checkout sends the customer back.
    billing_success_url: str = "http://127.0.0.1:8000/billing/done"
    billing_cancel_url: str = "http://127.0.0.1:8000/billing/cancelled"
    # Dunning: how long an organisation stays past due before its servers are
    # suspended, and how long a server outlives its ended subscription (with
    # its final backup taken) before it is deprovisioned.
    billing_grace_days: float = Field(default=14, ge=0, le=365)
    billing_retention_days: float = Field(default=30, ge=0, le=3650)
    # Days until due for organisations staff switch to bank transfer.
    billing_days_until_due: int = Field(default=30, ge=1, le=365)
    # Attempts at processing one stored event before it is left for staff.
    billing_event_attempts: int = Field(default=8, ge=1, le=100)
    environment: Literal["development", "production"] = "development"

    @field_validator("stripe_api_base")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> BillingSettings:
        if self.environment != "production":
            return self
        for name, secret in (
            ("HERD_STRIPE_API_KEY", self.stripe_api_key),
            ("HERD_STRIPE_WEBHOOK_SECRET", self.stripe_webhook_secret),
        ):
            if secret is not None and secret.get_secret_value().strip().lower() in (
                PLACEHOLDER_SECRETS
            ):
                raise ValueError(f"{name} is a placeholder; use the key from Stripe")
        return self

    @property
    def enabled(self) -> bool:
        return self.stripe_api_key is not None


@lru_cache
def get_billing_settings() -> BillingSettings:
    return BillingSettings()
