"""`clips` and `cuts`: cuts are the truth, clips the segments between them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlmodel import Field, SQLModel

from heaters.models._base import Timestamp, created_at, optional_time, updated_at
from heaters.models.states import ClipState, check_in


class Clip(SQLModel, table=True):
    __tablename__ = "clips"
    __table_args__ = (
        CheckConstraint(check_in("ingest_state", ClipState), name="clips_ingest_state_check"),
        CheckConstraint("start_frame >= 0 AND end_frame > start_frame", name="clips_frames_check"),
        # Two live clips of one video never share a frame; `archived` rows are history.
        ExcludeConstraint(
            ("source_video_id", "="),
            (text("int4range(start_frame, end_frame)"), "&&"),
            name="clips_no_overlap",
            using="gist",
            where=text(f"ingest_state <> '{ClipState.ARCHIVED.value}'"),
        ),
        Index("clips_source_video_id_idx", "source_video_id"),
        Index("clips_ingest_state_idx", "ingest_state", "id"),
        Index("clips_grouped_with_clip_id_idx", "grouped_with_clip_id"),
        # The review queue: pending clips in source order (video, then start frame).
        Index(
            "clips_pending_order_idx",
            "source_video_id",
            "start_frame",
            postgresql_where=text(f"ingest_state = '{ClipState.PENDING_REVIEW.value}'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_video_id: int = Field(
        sa_column=Column(Integer, ForeignKey("source_videos.id", ondelete="CASCADE"), nullable=False)
    )
    clip_identifier: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    clip_filepath: str | None = Field(default=None, sa_column=Column(Text, nullable=True, unique=True))
    start_frame: int
    end_frame: int
    ingest_state: str = Field(
        default=ClipState.PENDING_REVIEW.value,
        sa_column=Column(Text, nullable=False, server_default=ClipState.PENDING_REVIEW.value),
    )
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reviewed_at: Timestamp = optional_time()
    reviewed_by_user_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    )
    embedded_at: Timestamp = optional_time()
    grouped_with_clip_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("clips.id", ondelete="SET NULL"), nullable=True)
    )
    processing_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()


class Cut(SQLModel, table=True):
    __tablename__ = "cuts"
    __table_args__ = (
        CheckConstraint("frame_number > 0", name="cuts_frame_number_check"),
        CheckConstraint("source IN ('scene_detection', 'reviewer')", name="cuts_source_check"),
        Index("cuts_source_video_id_frame_number_key", "source_video_id", "frame_number", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    source_video_id: int = Field(
        sa_column=Column(Integer, ForeignKey("source_videos.id", ondelete="CASCADE"), nullable=False)
    )
    frame_number: int
    source: str = Field(default="scene_detection", sa_column=Column(Text, nullable=False))
    # The detector's score at this boundary, shown to reviewers as its confidence.
    score: float | None = None
    created_by_user_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    )
    operation_metadata: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    )
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()
