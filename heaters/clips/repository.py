"""Read queries about clips shared by the review page, the videos page and the events they publish."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from heaters.errors import NotFound
from heaters.models.states import ClipState


@dataclass(frozen=True)
class PendingCounts:
    total: int
    video: int


def pending_counts(session: Session, video_id: int) -> PendingCounts:
    """Clips waiting for review, overall and in one video (one query)."""
    row = session.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE source_video_id = :video) FROM clips "
            f"WHERE ingest_state = '{ClipState.PENDING_REVIEW.value}'"
        ),
        {"video": video_id},
    ).one()
    return PendingCounts(int(row[0]), int(row[1]))


def pending_total(session: Session) -> int:
    query = text(f"SELECT count(*) FROM clips WHERE ingest_state = '{ClipState.PENDING_REVIEW.value}'")
    return int(session.execute(query).scalar_one())


# Clips past review, in the order a curator walks them: the ones the pipeline is working on or has done.
PAST_REVIEW = (
    ClipState.REVIEW_APPROVED,
    ClipState.EXPORTING,
    ClipState.EXPORTED,
    ClipState.EXPORT_FAILED,
    ClipState.KEYFRAMING,
    ClipState.KEYFRAMED,
    ClipState.KEYFRAME_FAILED,
    ClipState.EMBEDDING,
    ClipState.EMBEDDED,
    ClipState.EMBEDDING_FAILED,
)
FAILED = frozenset({ClipState.EXPORT_FAILED, ClipState.KEYFRAME_FAILED, ClipState.EMBEDDING_FAILED})

_CLIP_COLUMNS = """
    c.id, c.source_video_id, v.title, c.clip_identifier, c.start_frame, c.end_frame, c.ingest_state,
    c.clip_filepath, c.last_error, c.grouped_with_clip_id, c.reviewed_at, c.embedded_at, v.fps_num, v.fps_den,
    (SELECT a.s3_key FROM clip_artifacts a WHERE a.clip_id = c.id AND a.artifact_type = 'keyframe'
      ORDER BY abs(a.position - 1), a.id LIMIT 1) AS keyframe_key
"""


def _clip_row(row: Any) -> dict[str, Any]:
    fps = row.fps_num / row.fps_den if row.fps_num and row.fps_den else None
    frames = row.end_frame - row.start_frame
    return {
        "id": row.id,
        "video_id": row.source_video_id,
        "video_title": row.title,
        "identifier": row.clip_identifier,
        "start_frame": row.start_frame,
        "end_frame": row.end_frame,
        "frames": frames,
        "seconds": round(frames / fps, 3) if fps else None,
        "state": row.ingest_state,
        "failed": ClipState(row.ingest_state) in FAILED,
        "key": row.clip_filepath,
        "keyframe_key": row.keyframe_key,
        "grouped_with": row.grouped_with_clip_id,
        "last_error": row.last_error,
        "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None,
        "embedded_at": row.embedded_at.isoformat() if row.embedded_at else None,
    }


def list_past_review(
    session: Session,
    *,
    video_id: int | None = None,
    state: ClipState | None = None,
    limit: int = 48,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Clips after review, newest decisions first; `state` must be one of PAST_REVIEW."""
    states = [state] if state is not None else list(PAST_REVIEW)
    if not set(states) <= set(PAST_REVIEW):
        raise ValueError(f"{state} is not a state after review")
    rows = session.execute(
        text(
            f"SELECT {_CLIP_COLUMNS} FROM clips c JOIN source_videos v ON v.id = c.source_video_id "
            "WHERE c.ingest_state = ANY(:states) AND (CAST(:video AS integer) IS NULL OR c.source_video_id = :video) "
            "ORDER BY c.source_video_id, c.start_frame, c.id LIMIT :limit OFFSET :offset"
        ),
        {"states": [s.value for s in states], "video": video_id, "limit": limit, "offset": offset},
    ).all()
    return [_clip_row(r) for r in rows]


def show_clip(session: Session, clip_id: int) -> dict[str, Any]:
    """One clip in full: its files, its group, its keyframes, its embedding variants, its stage claims."""
    row = session.execute(
        text(f"SELECT {_CLIP_COLUMNS} FROM clips c JOIN source_videos v ON v.id = c.source_video_id WHERE c.id = :id"),
        {"id": clip_id},
    ).first()
    if row is None:
        raise NotFound(f"clip {clip_id} does not exist")
    clip = _clip_row(row)
    clip["keyframes"] = [
        {"strategy": r.strategy, "position": r.position, "key": r.s3_key, "frame": (r.metadata or {}).get("frame")}
        for r in session.execute(
            text(
                "SELECT strategy, position, s3_key, metadata FROM clip_artifacts WHERE clip_id = :id "
                "ORDER BY strategy, position"
            ),
            {"id": clip_id},
        ).all()
    ]
    clip["embeddings"] = [
        {"model": r.model_name, "strategy": r.generation_strategy, "dim": r.embedding_dim, "version": r.model_version}
        for r in session.execute(
            text(
                "SELECT model_name, generation_strategy, embedding_dim, model_version FROM embeddings "
                "WHERE clip_id = :id ORDER BY model_name, generation_strategy"
            ),
            {"id": clip_id},
        ).all()
    ]
    clip["jobs"] = [
        {"stage": r.stage, "state": r.state, "attempts": r.attempts, "last_error": r.last_error}
        for r in session.execute(
            text(
                "SELECT stage, state, attempts, last_error FROM job_claims WHERE entity_id = :id "
                "AND stage LIKE 'clip.%' ORDER BY stage"
            ),
            {"id": clip_id},
        ).all()
    ]
    return clip
