"""`source_videos`: one ingested video and where its media lives."""

from __future__ import annotations

from fractions import Fraction

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, LargeBinary, Text, text
from sqlmodel import Field, SQLModel

from heaters.models._base import Timestamp, created_at, optional_time, updated_at
from heaters.models.states import VideoState, check_in


class SourceVideo(SQLModel, table=True):
    __tablename__ = "source_videos"
    __table_args__ = (
        CheckConstraint(check_in("ingest_state", VideoState), name="source_videos_ingest_state_check"),
        CheckConstraint("(fps_num IS NULL) = (fps_den IS NULL)", name="source_videos_fps_pair_check"),
        CheckConstraint("fps_num IS NULL OR (fps_num > 0 AND fps_den > 0)", name="source_videos_fps_check"),
        CheckConstraint("progress IS NULL OR (progress >= 0 AND progress <= 100)", name="source_videos_progress_check"),
        Index(
            "source_videos_original_url_key",
            "original_url",
            unique=True,
            postgresql_where=text("original_url IS NOT NULL"),
        ),
        Index(
            "source_videos_content_sha256_key",
            "content_sha256",
            unique=True,
            postgresql_where=text("content_sha256 IS NOT NULL"),
        ),
        Index("source_videos_ingest_state_idx", "ingest_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    original_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # sha256 of an uploaded file's bytes: the same file twice gives back the same video.
    content_sha256: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    filepath: str | None = Field(default=None, sa_column=Column(Text, nullable=True, unique=True))
    proxy_filepath: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    master_filepath: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    original_size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))

    # ffprobe of the proxy; fps is a rational because 30000/1001 is not 29.97.
    fps_num: int | None = None
    fps_den: int | None = None
    frame_count: int | None = None
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None

    ingest_state: str = Field(
        default=VideoState.NEW.value,
        sa_column=Column(Text, nullable=False, server_default=VideoState.NEW.value),
    )
    needs_splicing: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
    # A chunked proxy's scan: frames [0, scanned_frames) are scored, clips cover [0, released_frames) and
    # `released_clips` of them came from the scan (their segment numbers continue from there).
    scanned_frames: int | None = None
    released_frames: int | None = None
    released_clips: int | None = None
    # The scan's detector after `scanned_frames` frames (heaters.media.scene_scores.Replay), so the next
    # chunk's scan resumes instead of replaying from frame 0. Only a cache: without it the scan replays.
    scan_state: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    progress: float | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    downloaded_at: Timestamp = optional_time()
    encoded_at: Timestamp = optional_time()
    spliced_at: Timestamp = optional_time()
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()

    @property
    def fps(self) -> Fraction | None:
        if self.fps_num is None or self.fps_den is None:
            return None
        return Fraction(self.fps_num, self.fps_den)
