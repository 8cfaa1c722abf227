from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from controlplane.sqltypes import UTCDateTime, utcnow


class ServerStorage(SQLModel, table=True):
    """The object storage Herd granted one server: its buckets and the one
    access key Mastodon uses, with that key's secret encrypted.

    This row is the source of truth for which key is the server's: any other
    key the store holds for the server's user is an orphan (its secret was
    never recorded) and the next grant deletes it. Buckets and user are
    named from the server's id, so cleaning up does not need this row.
    """

    __tablename__ = "server_storage"

    server_id: uuid.UUID = Field(foreign_key="servers.id", primary_key=True, ondelete="CASCADE")
    # Recorded rather than derived, so a later change of HERD_S3_BUCKET_PREFIX
    # does not move a running server away from the bucket holding its media.
    media_bucket: str = Field(sa_type=String(63))
    backups_bucket: str = Field(sa_type=String(63))
    # IAM allows key ids of up to 128 characters.
    access_key_id: str = Field(sa_type=String(128))
    secret_access_key_encrypted: str = Field(sa_type=Text, repr=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
