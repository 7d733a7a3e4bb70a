"""State names, shared by the models (CHECK constraints) and the services (transitions)."""

from __future__ import annotations

from enum import StrEnum


class VideoState(StrEnum):
    NEW = "new"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    DOWNLOAD_FAILED = "download_failed"
    ENCODING = "encoding"
    ENCODED = "encoded"
    ENCODING_FAILED = "encoding_failed"
    DETECTING_SCENES = "detecting_scenes"
    DETECT_SCENES_FAILED = "detect_scenes_failed"


class ClipState(StrEnum):
    PENDING_REVIEW = "pending_review"
    REVIEW_APPROVED = "review_approved"
    REVIEW_SKIPPED = "review_skipped"
    REVIEW_ARCHIVED = "review_archived"
    ARCHIVED = "archived"
    EXPORTING = "exporting"
    EXPORTED = "exported"
    EXPORT_FAILED = "export_failed"
    KEYFRAMING = "keyframing"
    KEYFRAMED = "keyframed"
    KEYFRAME_FAILED = "keyframe_failed"
    EMBEDDING = "embedding"
    EMBEDDED = "embedded"
    EMBEDDING_FAILED = "embedding_failed"


# Clip decisions a reviewer can still take back: nothing downstream (export) has started.
REVIEW_STATES = frozenset(
    {ClipState.PENDING_REVIEW, ClipState.REVIEW_APPROVED, ClipState.REVIEW_SKIPPED, ClipState.REVIEW_ARCHIVED}
)


class Role(StrEnum):
    REVIEWER = "reviewer"
    ADMIN = "admin"


class ClaimState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"


class ReviewActionKind(StrEnum):
    APPROVE = "approve"
    SKIP = "skip"
    ARCHIVE = "archive"
    MERGE = "merge"
    GROUP = "group"
    SPLIT = "split"


class TempClipState(StrEnum):
    """A playback-cache entry: being cut, ready to serve, or failed (shown with its error and a Retry)."""

    GENERATING = "generating"
    READY = "ready"
    FAILED = "failed"


class ArtifactType(StrEnum):
    KEYFRAME = "keyframe"


class KeyframeStrategy(StrEnum):
    MULTI = "multi"
    MIDPOINT = "midpoint"
    SINGLE = "single"


class GenerationStrategy(StrEnum):
    KEYFRAME_MULTI_AVG = "keyframe_multi_avg"
    KEYFRAME_MULTI = "keyframe_multi"
    KEYFRAME_SINGLE = "keyframe_single"


def check_in(column: str, values: type[StrEnum]) -> str:
    """SQL for a CHECK that allows exactly an enum's values."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({allowed})"
