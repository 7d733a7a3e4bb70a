"""Clip pipeline: the unused `detect_scenes` video state goes; one HNSW index per embedding model.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIDEO_STATES_BEFORE = (
    "new, downloading, downloaded, download_failed, encoding, encoded, encoding_failed, "
    "detect_scenes, detecting_scenes, detect_scenes_failed"
)
VIDEO_STATES_AFTER = VIDEO_STATES_BEFORE.replace("detect_scenes, ", "")


def _video_check(states: str) -> None:
    allowed = ", ".join(f"'{s.strip()}'" for s in states.split(","))
    op.drop_constraint("source_videos_ingest_state_check", "source_videos", type_="check")
    op.create_check_constraint("source_videos_ingest_state_check", "source_videos", f"ingest_state IN ({allowed})")


# The models this release embeds with (heaters.models.artifact.EMBEDDING_MODELS), frozen here.
MODELS = {
    "efficientnet-lite0": ("embeddings_hnsw_half_efficientnet_lite0", 1280),
    "clip-vit-b32": ("embeddings_hnsw_half_clip_vit_b32", 512),
}
OLD_INDEX = "embeddings_hnsw_openai_clip_vit_base_patch32"


def upgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {OLD_INDEX}")
    for model, (name, dim) in MODELS.items():
        op.execute(
            f"CREATE INDEX {name} ON embeddings USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) "
            f"WITH (m = 16, ef_construction = 64) WHERE model_name = '{model}'"
        )
    # Never set by any code (reference 2.8); a row in it could only come from a hand edit.
    op.execute("UPDATE source_videos SET ingest_state = 'encoded' WHERE ingest_state = 'detect_scenes'")
    _video_check(VIDEO_STATES_AFTER)


def downgrade() -> None:
    _video_check(VIDEO_STATES_BEFORE)
    for name, _dim in MODELS.values():
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute(
        f"CREATE INDEX {OLD_INDEX} ON embeddings USING hnsw ((embedding::vector(512)) vector_cosine_ops) "
        "WHERE model_name = 'openai/clip-vit-base-patch32'"
    )
