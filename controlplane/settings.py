"""Settings from `HERD_*` environment variables, with embedded defaults.

The defaults run Herd on one machine with no services: SQLite under the data
directory, Celery over a SQLAlchemy/SQLite broker, and a secret key generated
on first start. A production deployment points the URLs at PostgreSQL and
Redis or RabbitMQ.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values people paste from examples; refusing them outside development keeps a
# copied tutorial from becoming a production key.
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "xxx", "todo"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERD_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str | None = None
    broker_url: str | None = None
    result_backend: str | None = None
    # The key that encrypts secrets at rest. Read from HERD_SECRET_KEY, else from
    # secret_key_file, else generated into that file on first start.
    secret_key: str | None = Field(default=None, repr=False)
    secret_key_file: Path | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 1_048_576
    default_page_size: int = 50
    max_page_size: int = 500
    token_max_days: int = 366
    invitation_days: int = 14
    # Domains no customer may order, besides the IANA special-use names:
    # typically the provider's own zone.
    reserved_domains: list[str] = Field(default_factory=list)
    readiness_cache_seconds: float = 5.0
    # A worker renews its job's lease every third of this; a job whose lease
    # ran out is handed to another worker by the reconciler.
    job_lease_seconds: float = 120.0
    reconcile_seconds: float = 30.0
    # Multiplies every step's retry backoff (health gates included). 1 in
    # production; a test stack whose stand-in answers at once shortens the
    # waits instead of sleeping through minutes of them.
    retry_backoff_scale: float = Field(default=1.0, gt=0, le=1)
    # What new servers run, and where the source comes from (a mirror, for
    # providers that do not let hosts reach GitHub).
    mastodon_version: str = "v4.5.2"
    mastodon_repo_url: str = "https://github.com/mastodon/mastodon.git"
    # "public": the health gate asks https://DOMAIN/health through nginx, as a
    # visitor would. "direct": it asks the host's web process at
    # http://ADDRESS:PORT, for private networks and the test hosts.
    health_check: Literal["public", "direct"] = "public"
    health_timeout_seconds: float = 5.0
    playbook_timeout_seconds: int = 3600
    # Role variables that hold for the whole fleet (a JSON object), under
    # each server's own: e.g. {"mastodon_nginx_tls_mode": "provided"} where
    # a load balancer ends TLS, or mastodon_db_host for a shared PostgreSQL.
    playbook_vars: dict[str, Any] = Field(default_factory=dict)
    # Tags every run skips, e.g. "packages" where hosts come from an image
    # that already has them.
    playbook_skip_tags: list[str] = Field(default_factory=list)
    smtp_server: str | None = None
    smtp_port: int = 587
    smtp_login: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_from_address: str = "notifications@localhost"
    # Abuse limits (controlplane/ratelimit.py), per minute, as token buckets:
    # API tokens created per caller (or per address, accepting invitations),
    # and requests refused 401 per client address before it gets 429s.
    rate_limit_token_creations: int = 10
    rate_limit_auth_failures: int = 30
    # Where every API process shares its buckets; unset: the broker when it
    # is Redis, else each process counts for itself.
    rate_limit_redis_url: str | None = None
    # Stripe's events are a few KiB; anything near this is not one of them.
    webhook_max_body_bytes: int = 262_144
    # Web portal (web/). The session cookie is Secure; only tests on plain
    # http://127.0.0.1 turn that off (browsers already allow Secure cookies
    # on loopback, so the embedded run keeps it).
    web_cookie_secure: bool = True
    web_session_hours: int = 12
    # Sign-in through the provider's OIDC identity provider; without these
    # the portal offers sign-in by pasting an API token.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)
    # The Ed25519 key that signs playbook bundles (PEM); unset: generated
    # once into data_dir/playbook-signing.key.
    playbook_signing_key_file: Path | None = None
    # Branding (controlplane/branding): the largest logo or background image
    # accepted (max_body_bytes bounds every request first) and the largest
    # custom CSS, in bytes.
    branding_image_max_bytes: int = 1_048_576
    branding_css_max_bytes: int = 20_000

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if (
            self.environment == "production"
            and self.secret_key is not None
            and self.secret_key.strip().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError("HERD_SECRET_KEY is a placeholder; generate a real key")
        if self.environment == "production" and self.database_url is None:
            raise ValueError("HERD_DATABASE_URL must be set in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'herd.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite3'}"

    @property
    def resolved_result_backend(self) -> str:
        return self.result_backend or f"db+sqlite:///{self.data_dir / 'results.sqlite3'}"

    @property
    def resolved_secret_key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"


@lru_cache
def get_settings() -> Settings:
    return Settings()
