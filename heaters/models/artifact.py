"""`clip_artifacts` and `embeddings`: what later stages derive from an exported clip."""

from __future__ import annotations

from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from heaters.models._base import Timestamp, created_at, updated_at
from heaters.models.states import ArtifactType, GenerationStrategy, KeyframeStrategy, check_in

# Every embedding model we index, with its dimension: one HNSW (cosine) index each, on a half-precision
# cast of the dimensionless column, restricted to that model's rows (the pgvector way to mix dimensions in
# one table). halfvec halves the index at no measured loss of recall (docs/benchmarks.md, similarity).
EMBEDDING_MODELS: dict[str, int] = {"efficientnet-lite0": 1280, "clip-vit-b32": 512}
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64


def hnsw_index_name(model_name: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in model_name.lower())
    return f"embeddings_hnsw_half_{slug}"[:63]


class ClipArtifact(SQLModel, table=True):
    __tablename__ = "clip_artifacts"
    __table_args__ = (
        CheckConstraint(check_in("artifact_type", ArtifactType), name="clip_artifacts_artifact_type_check"),
        CheckConstraint(check_in("strategy", KeyframeStrategy), name="clip_artifacts_strategy_check"),
        Index(
            "clip_artifacts_clip_type_strategy_position_key",
            "clip_id",
            "artifact_type",
            "strategy",
            "position",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(sa_column=Column(Integer, ForeignKey("clips.id", ondelete="CASCADE"), nullable=False))
    artifact_type: str = Field(sa_column=Column(Text, nullable=False))
    strategy: str = Field(sa_column=Column(Text, nullable=False))
    position: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    s3_key: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    metadata_: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()


class Embedding(SQLModel, table=True):
    __tablename__ = "embeddings"
    __table_args__ = (
        CheckConstraint(
            check_in("generation_strategy", GenerationStrategy), name="embeddings_generation_strategy_check"
        ),
        CheckConstraint("vector_dims(embedding) = embedding_dim", name="embeddings_dim_check"),
        Index("embeddings_clip_model_strategy_key", "clip_id", "model_name", "generation_strategy", unique=True),
        *(
            Index(
                hnsw_index_name(model),
                text(f"(embedding::halfvec({dim})) halfvec_cosine_ops"),
                postgresql_using="hnsw",
                postgresql_with={"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
                postgresql_where=text(f"model_name = '{model}'"),
            )
            for model, dim in EMBEDDING_MODELS.items()
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    clip_id: int = Field(sa_column=Column(Integer, ForeignKey("clips.id", ondelete="CASCADE"), nullable=False))
    model_name: str = Field(sa_column=Column(Text, nullable=False))
    model_version: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    generation_strategy: str = Field(sa_column=Column(Text, nullable=False))
    embedding_dim: int
    embedding: list[float] = Field(sa_column=Column(Vector(), nullable=False))
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()
