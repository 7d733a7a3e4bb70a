"""Review: leases on clips held by a reviewer's tab, the playback cache's records, the queue's index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_leases",
        sa.Column("clip_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("clip_id"),
    )
    op.create_index("review_leases_holder_idx", "review_leases", ["holder"], unique=False)
    op.create_index("review_leases_lease_until_idx", "review_leases", ["lease_until"], unique=False)
    op.create_table(
        "temp_clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("s3_key", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("worker_id", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generate_ms", sa.Integer(), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_served_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("state IN ('generating', 'ready', 'failed')", name="temp_clips_state_check"),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("filename"),
    )
    op.create_index("temp_clips_clip_id_key", "temp_clips", ["clip_id"], unique=True)
    op.create_index("temp_clips_state_lease_idx", "temp_clips", ["state", "lease_until"], unique=False)
    op.execute(
        "CREATE TRIGGER temp_clips_set_updated_at BEFORE UPDATE ON temp_clips "
        "FOR EACH ROW EXECUTE FUNCTION heaters_set_updated_at()"
    )
    op.create_index(
        "clips_pending_order_idx",
        "clips",
        ["source_video_id", "start_frame"],
        unique=False,
        postgresql_where=sa.text("ingest_state = 'pending_review'"),
    )


def downgrade() -> None:
    op.drop_index(
        "clips_pending_order_idx", table_name="clips", postgresql_where=sa.text("ingest_state = 'pending_review'")
    )
    op.drop_index("temp_clips_state_lease_idx", table_name="temp_clips")
    op.drop_index("temp_clips_clip_id_key", table_name="temp_clips")
    op.drop_table("temp_clips")
    op.drop_index("review_leases_lease_until_idx", table_name="review_leases")
    op.drop_index("review_leases_holder_idx", table_name="review_leases")
    op.drop_table("review_leases")
