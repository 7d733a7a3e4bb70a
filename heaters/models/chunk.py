"""`proxy_chunks`: the parts a long video's proxy is encoded in, each its own job on any worker host.

A chunk covers proxy frames [start_frame, end_frame) (end NULL: to the end of the video). Once encoded it
has its frame count, its file in S3 (none if the source ended before it) and the scene scores of its
frames; the video's clips come from the scores of the chunks encoded so far, and the proxy from their files.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

from heaters.models._base import Timestamp, created_at, optional_time, updated_at


class ProxyChunk(SQLModel, table=True):
    __tablename__ = "proxy_chunks"
    __table_args__ = (
        CheckConstraint("start_frame >= 0", name="proxy_chunks_start_check"),
        CheckConstraint("end_frame IS NULL OR end_frame > start_frame", name="proxy_chunks_end_check"),
        CheckConstraint("frame_count IS NULL OR frame_count >= 0", name="proxy_chunks_frames_check"),
        Index("proxy_chunks_video_index_key", "source_video_id", "chunk_index", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_video_id: int = Field(
        sa_column=Column(Integer, ForeignKey("source_videos.id", ondelete="CASCADE"), nullable=False)
    )
    chunk_index: int
    start_frame: int
    end_frame: int | None = None
    # The size the scene scorer sees (the proxy's shape, long side 256), the same for every chunk of a video.
    analysis_width: int
    analysis_height: int
    frame_count: int | None = None
    filepath: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    scores: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    encoded_at: Timestamp = optional_time()
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()
