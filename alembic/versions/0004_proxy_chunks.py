"""Chunked proxy: `proxy_chunks`, and how far a video's progressive scene scan has got.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proxy_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "source_video_id", sa.Integer(), sa.ForeignKey("source_videos.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("start_frame", sa.Integer(), nullable=False),
        sa.Column("end_frame", sa.Integer(), nullable=True),
        sa.Column("analysis_width", sa.Integer(), nullable=False),
        sa.Column("analysis_height", sa.Integer(), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=True),
        sa.Column("filepath", sa.Text(), nullable=True),
        sa.Column("scores", sa.LargeBinary(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("encoded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("start_frame >= 0", name="proxy_chunks_start_check"),
        sa.CheckConstraint("end_frame IS NULL OR end_frame > start_frame", name="proxy_chunks_end_check"),
        sa.CheckConstraint("frame_count IS NULL OR frame_count >= 0", name="proxy_chunks_frames_check"),
    )
    op.create_index("proxy_chunks_video_index_key", "proxy_chunks", ["source_video_id", "chunk_index"], unique=True)
    op.execute(
        "CREATE TRIGGER proxy_chunks_set_updated_at BEFORE UPDATE ON proxy_chunks "
        "FOR EACH ROW EXECUTE FUNCTION heaters_set_updated_at()"
    )
    op.add_column("source_videos", sa.Column("scanned_frames", sa.Integer(), nullable=True))
    op.add_column("source_videos", sa.Column("released_frames", sa.Integer(), nullable=True))
    op.add_column("source_videos", sa.Column("released_clips", sa.Integer(), nullable=True))
    op.add_column("source_videos", sa.Column("scan_state", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("source_videos", "scan_state")
    op.drop_column("source_videos", "released_clips")
    op.drop_column("source_videos", "released_frames")
    op.drop_column("source_videos", "scanned_frames")
    op.drop_index("proxy_chunks_video_index_key", table_name="proxy_chunks")
    op.drop_table("proxy_chunks")
