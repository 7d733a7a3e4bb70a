"""Initial schema: videos, clips, cuts, artifacts, embeddings, users, review log, job claims.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import pgvector.sqlalchemy
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Raw UPDATEs bump updated_at too, not only ORM ones.
UPDATED_AT_TABLES = ("source_videos", "clips", "cuts", "clip_artifacts", "embeddings", "job_claims")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")  # integer equality inside the GiST exclusion
    op.execute(
        """
        CREATE FUNCTION heaters_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.updated_at = now(); RETURN NEW; END $$
        """
    )
    op.create_table(
        "job_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("worker_id", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'retrying', 'failed')", name="job_claims_state_check"
        ),
        sa.CheckConstraint("attempts >= 0", name="job_claims_attempts_check"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("job_claims_stage_entity_key", "job_claims", ["stage", "entity_id"], unique=True)
    op.create_index("job_claims_state_lease_idx", "job_claims", ["state", "lease_until"], unique=False)
    op.create_table(
        "source_videos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("original_url", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.Text(), nullable=True),
        sa.Column("filepath", sa.Text(), nullable=True),
        sa.Column("proxy_filepath", sa.Text(), nullable=True),
        sa.Column("master_filepath", sa.Text(), nullable=True),
        sa.Column("original_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("fps_num", sa.Integer(), nullable=True),
        sa.Column("fps_den", sa.Integer(), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("ingest_state", sa.Text(), server_default="new", nullable=False),
        sa.Column("needs_splicing", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("encoded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spliced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "ingest_state IN ('new', 'downloading', 'downloaded', 'download_failed', 'encoding', 'encoded', 'encoding_failed', 'detect_scenes', 'detecting_scenes', 'detect_scenes_failed')",
            name="source_videos_ingest_state_check",
        ),
        sa.CheckConstraint("(fps_num IS NULL) = (fps_den IS NULL)", name="source_videos_fps_pair_check"),
        sa.CheckConstraint("fps_num IS NULL OR (fps_num > 0 AND fps_den > 0)", name="source_videos_fps_check"),
        sa.CheckConstraint(
            "progress IS NULL OR (progress >= 0 AND progress <= 100)", name="source_videos_progress_check"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("filepath"),
    )
    op.create_index(
        "source_videos_content_sha256_key",
        "source_videos",
        ["content_sha256"],
        unique=True,
        postgresql_where=sa.text("content_sha256 IS NOT NULL"),
    )
    op.create_index("source_videos_ingest_state_idx", "source_videos", ["ingest_state"], unique=False)
    op.create_index(
        "source_videos_original_url_key",
        "source_videos",
        ["original_url"],
        unique=True,
        postgresql_where=sa.text("original_url IS NOT NULL"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), server_default="reviewer", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("role IN ('reviewer', 'admin')", name="users_role_check"),
        sa.CheckConstraint("username ~ '^[A-Za-z0-9_.-]{1,64}$'", name="users_username_check"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("users_username_lower_key", "users", [sa.literal_column("lower(username)")], unique=True)
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_video_id", sa.Integer(), nullable=False),
        sa.Column("clip_identifier", sa.Text(), nullable=False),
        sa.Column("clip_filepath", sa.Text(), nullable=True),
        sa.Column("start_frame", sa.Integer(), nullable=False),
        sa.Column("end_frame", sa.Integer(), nullable=False),
        sa.Column("ingest_state", sa.Text(), server_default="pending_review", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_user_id", sa.Integer(), nullable=True),
        sa.Column("embedded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grouped_with_clip_id", sa.Integer(), nullable=True),
        sa.Column(
            "processing_metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        postgresql.ExcludeConstraint(
            (sa.column("source_video_id"), "="),
            (sa.text("int4range(start_frame, end_frame)"), "&&"),
            where=sa.text("ingest_state <> 'archived'"),
            using="gist",
            name="clips_no_overlap",
        ),
        sa.CheckConstraint(
            "ingest_state IN ('pending_review', 'review_approved', 'review_skipped', 'review_archived', 'archived', 'exporting', 'exported', 'export_failed', 'keyframing', 'keyframed', 'keyframe_failed', 'embedding', 'embedded', 'embedding_failed')",
            name="clips_ingest_state_check",
        ),
        sa.CheckConstraint("start_frame >= 0 AND end_frame > start_frame", name="clips_frames_check"),
        sa.ForeignKeyConstraint(["grouped_with_clip_id"], ["clips.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reviewed_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["source_video_id"], ["source_videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clip_filepath"),
        sa.UniqueConstraint("clip_identifier"),
    )
    op.create_index("clips_grouped_with_clip_id_idx", "clips", ["grouped_with_clip_id"], unique=False)
    op.create_index("clips_ingest_state_idx", "clips", ["ingest_state", "id"], unique=False)
    op.create_index("clips_source_video_id_idx", "clips", ["source_video_id"], unique=False)
    op.create_table(
        "cuts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("source_video_id", sa.Integer(), nullable=False),
        sa.Column("frame_number", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column(
            "operation_metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("source IN ('scene_detection', 'reviewer')", name="cuts_source_check"),
        sa.CheckConstraint("frame_number > 0", name="cuts_frame_number_check"),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["source_video_id"], ["source_videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("cuts_source_video_id_frame_number_key", "cuts", ["source_video_id", "frame_number"], unique=True)
    op.create_table(
        "review_actions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("clip_ids", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "cut_ops",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "action IN ('approve', 'skip', 'archive', 'merge', 'group', 'split')",
            name="review_actions_action_check",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("review_actions_user_id_id_idx", "review_actions", ["user_id", "id"], unique=False)
    op.create_table(
        "clip_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("artifact_type", sa.Text(), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("s3_key", sa.Text(), nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("artifact_type IN ('keyframe')", name="clip_artifacts_artifact_type_check"),
        sa.CheckConstraint("strategy IN ('multi', 'midpoint', 'single')", name="clip_artifacts_strategy_check"),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("s3_key"),
    )
    op.create_index(
        "clip_artifacts_clip_type_strategy_position_key",
        "clip_artifacts",
        ["clip_id", "artifact_type", "strategy", "position"],
        unique=True,
    )
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("generation_strategy", sa.Text(), nullable=False),
        sa.Column("embedding_dim", sa.Integer(), nullable=False),
        sa.Column("embedding", pgvector.sqlalchemy.vector.VECTOR(), nullable=False),
        sa.Column("inserted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "generation_strategy IN ('keyframe_multi_avg', 'keyframe_multi', 'keyframe_single')",
            name="embeddings_generation_strategy_check",
        ),
        sa.CheckConstraint("vector_dims(embedding) = embedding_dim", name="embeddings_dim_check"),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "embeddings_clip_model_strategy_key",
        "embeddings",
        ["clip_id", "model_name", "generation_strategy"],
        unique=True,
    )
    op.create_index(
        "embeddings_hnsw_openai_clip_vit_base_patch32",
        "embeddings",
        [sa.literal_column("(embedding::vector(512)) vector_cosine_ops")],
        unique=False,
        postgresql_using="hnsw",
        postgresql_where=sa.text("model_name = 'openai/clip-vit-base-patch32'"),
    )
    for table in UPDATED_AT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION heaters_set_updated_at()"
        )


def downgrade() -> None:
    op.drop_index(
        "embeddings_hnsw_openai_clip_vit_base_patch32",
        table_name="embeddings",
        postgresql_using="hnsw",
        postgresql_where=sa.text("model_name = 'openai/clip-vit-base-patch32'"),
    )
    op.drop_index("embeddings_clip_model_strategy_key", table_name="embeddings")
    op.drop_table("embeddings")
    op.drop_index("clip_artifacts_clip_type_strategy_position_key", table_name="clip_artifacts")
    op.drop_table("clip_artifacts")
    op.drop_index("review_actions_user_id_id_idx", table_name="review_actions")
    op.drop_table("review_actions")
    op.drop_index("cuts_source_video_id_frame_number_key", table_name="cuts")
    op.drop_table("cuts")
    op.drop_index("clips_source_video_id_idx", table_name="clips")
    op.drop_index("clips_ingest_state_idx", table_name="clips")
    op.drop_index("clips_grouped_with_clip_id_idx", table_name="clips")
    op.drop_table("clips")
    op.drop_index("users_username_lower_key", table_name="users")
    op.drop_table("users")
    op.drop_index(
        "source_videos_original_url_key",
        table_name="source_videos",
        postgresql_where=sa.text("original_url IS NOT NULL"),
    )
    op.drop_index("source_videos_ingest_state_idx", table_name="source_videos")
    op.drop_index(
        "source_videos_content_sha256_key",
        table_name="source_videos",
        postgresql_where=sa.text("content_sha256 IS NOT NULL"),
    )
    op.drop_table("source_videos")
    op.drop_index("job_claims_state_lease_idx", table_name="job_claims")
    op.drop_index("job_claims_stage_entity_key", table_name="job_claims")
    op.drop_table("job_claims")
    op.execute("DROP FUNCTION heaters_set_updated_at()")
    # The vector and btree_gist extensions stay: other schemas in the database may use them.
