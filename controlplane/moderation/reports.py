"""Tables of the fleet moderation queue.

`ModerationReport` mirrors a report as a staffed server's admin API last
described it. The server holds the truth: Herd keeps a copy so the queue of
the whole fleet is one query, and stamps what the server does not record for
it (when Herd first saw the report, and first saw anyone act on it) for the
organisation's monthly figures.

`ModerationFeed` is, per server, the secret its Mastodon signs webhook
deliveries with (encrypted) and how the last pulls went, so the queue can say
"not reachable since …" instead of silently showing a stale list.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import UTCDateTime, utcnow


class ModerationReport(SQLModel, table=True):
    __tablename__ = "moderation_reports"
    __table_args__ = (
        UniqueConstraint("server_id", "remote_id"),
        # The queue: the open reports of a set of servers, oldest first.
        Index("ix_moderation_reports_open", "action_taken", "server_id", "created_at"),
        # The figures: one server's reports by month.
        Index("ix_moderation_reports_created", "server_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    server_id: uuid.UUID = Field(foreign_key="servers.id", ondelete="CASCADE")
    # Mastodon's id of the report on its server (a decimal string).
    remote_id: str = Field(sa_type=String(40))
    category: str = Field(default="other", sa_type=String(30))
    comment: str = Field(default="", sa_type=Text)
    forwarded: bool = False
    target_account_id: str = Field(sa_type=String(40))
    target_acct: str = Field(sa_type=String(300))
    reporter_account_id: str | None = Field(default=None, sa_type=String(40))
    reporter_acct: str | None = Field(default=None, sa_type=String(300))
    assigned_account_id: str | None = Field(default=None, sa_type=String(40))
    assigned_acct: str | None = Field(default=None, sa_type=String(300))
    # Mastodon's own stamps: created_at/updated_at order the copies of a
    # report (a copy older than the one stored is stale and ignored).
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    action_taken: bool = False
    action_taken_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Herd's stamps.
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    first_action_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    synced_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ModerationFeed(SQLModel, table=True):
    __tablename__ = "moderation_feeds"

    server_id: uuid.UUID = Field(foreign_key="servers.id", primary_key=True, ondelete="CASCADE")
    webhook_secret_encrypted: str = Field(sa_type=Text, repr=False)
    last_pull_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set by the first failed pull after a success, cleared by the next success.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=String(500))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
