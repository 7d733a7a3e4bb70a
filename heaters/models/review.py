"""`review_leases` and `temp_clips`: who holds which clip, and the playback cache's record of each file."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, ForeignKey, Index, Integer, Text, text
from sqlmodel import Field, SQLModel

from heaters.models._base import Timestamp, created_at, optional_time, updated_at
from heaters.models.states import TempClipState, check_in


class ReviewLease(SQLModel, table=True):
    """A clip loaded in one reviewer's tab (current or prefetched): nobody else is offered it.

    `holder` is the browser tab (Reflex's client token); the web process that holds the tab's websocket
    extends its leases while the tab is connected, so a closed tab's leases lapse on their own.
    """

    __tablename__ = "review_leases"
    __table_args__ = (
        Index("review_leases_holder_idx", "holder"),
        Index("review_leases_lease_until_idx", "lease_until"),
    )

    clip_id: int = Field(
        sa_column=Column(Integer, ForeignKey("clips.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    )
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    holder: str = Field(sa_column=Column(Text, nullable=False))
    lease_until: Timestamp = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=False))
    inserted_at: Timestamp = created_at()


class TempClip(SQLModel, table=True):
    """One file of the playback cache: a clip's frames stream-copied from the proxy.

    At most one live entry per clip (a partial unique index), so concurrent requests generate it once.
    `last_served_at` is written by the media route: the cleanup evicts by it, never by file atime.
    """

    __tablename__ = "temp_clips"
    __table_args__ = (
        CheckConstraint(check_in("state", TempClipState), name="temp_clips_state_check"),
        Index("temp_clips_clip_id_key", "clip_id", unique=True),
        Index("temp_clips_state_lease_idx", "state", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(sa_column=Column(Integer, ForeignKey("clips.id", ondelete="CASCADE"), nullable=False))
    filename: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    state: str = Field(sa_column=Column(Text, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Set when the file was also published to S3 (shared playback: web and workers on separate disks).
    s3_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    worker_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lease_until: Timestamp = optional_time()
    generate_ms: int | None = None
    ready_at: Timestamp = optional_time()
    last_served_at: Timestamp = optional_time()
    requested_at: Timestamp = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()
