"""Every table, in one metadata, so Alembic sees them all."""

from sqlmodel import SQLModel

from heaters.models.artifact import EMBEDDING_MODELS, ClipArtifact, Embedding
from heaters.models.chunk import ProxyChunk
from heaters.models.clip import Clip, Cut
from heaters.models.job import JobClaim
from heaters.models.review import ReviewLease, TempClip
from heaters.models.states import (
    ClaimState,
    ClipState,
    GenerationStrategy,
    KeyframeStrategy,
    ReviewActionKind,
    Role,
    TempClipState,
    VideoState,
)
from heaters.models.user import ReviewAction, User
from heaters.models.video import SourceVideo

metadata = SQLModel.metadata

__all__ = [
    "EMBEDDING_MODELS",
    "ClaimState",
    "Clip",
    "ClipArtifact",
    "ClipState",
    "Cut",
    "Embedding",
    "GenerationStrategy",
    "JobClaim",
    "KeyframeStrategy",
    "ProxyChunk",
    "ReviewAction",
    "ReviewActionKind",
    "ReviewLease",
    "Role",
    "SourceVideo",
    "TempClip",
    "TempClipState",
    "User",
    "VideoState",
    "metadata",
]
