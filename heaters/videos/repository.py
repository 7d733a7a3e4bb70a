"""Queries about videos, shaped for the CLI's JSON and the videos page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from heaters.errors import NotFound
from heaters.models import Clip, SourceVideo, VideoState
from heaters.pipeline import claims
from heaters.pipeline.stages import Stage


def chunk_counts(session: Session, video_ids: list[int] | None = None) -> dict[int, tuple[int, int]]:
    """(encoded, total) chunks per video that is (or was) encoded in chunks."""
    query = (
        "SELECT source_video_id, count(encoded_at), count(*) FROM proxy_chunks "
        + ("WHERE source_video_id = ANY(:ids) " if video_ids is not None else "")
        + "GROUP BY source_video_id"
    )
    rows = session.execute(text(query), {"ids": video_ids or []}).all()
    return {int(video): (int(encoded), int(total)) for video, encoded, total in rows}


def ingest_progress(video: SourceVideo, chunks: tuple[int, int] | None) -> dict[str, Any]:
    """How far a chunked encode and its scan have got, for the pages' bars (zeros for a single pass)."""
    encoded, total = chunks or (0, 0)
    fps = video.fps
    expected = round(video.duration_seconds * fps) if fps and video.duration_seconds else 0
    frames = video.frame_count or expected
    scanned = video.scanned_frames or 0
    return {
        "chunks_encoded": encoded,
        "chunks_total": total,
        "scanned_frames": scanned,
        "scanned_percent": round(100.0 * min(scanned, frames) / frames, 1) if frames and total else 0.0,
        "scanning": bool(total) and bool(video.needs_splicing),
        "released_clips": video.released_clips or 0,
    }


def video_ingest(session: Session, video_id: int) -> dict[str, Any] | None:
    """One video's state and chunked-ingest progress (no clips): what a live bar needs after an event."""
    video = session.get(SourceVideo, video_id, populate_existing=True)
    if video is None:
        return None
    return {
        **ingest_progress(video, chunk_counts(session, [video_id]).get(video_id)),
        "id": video.id,
        "state": video.ingest_state,
        "ready": video.ingest_state == VideoState.ENCODED and not video.needs_splicing,
    }


def video_summary(video: SourceVideo, chunks: tuple[int, int] | None = None) -> dict[str, Any]:
    fps = video.fps
    return {
        **ingest_progress(video, chunks),
        "id": video.id,
        "title": video.title,
        "state": video.ingest_state,
        "ready": video.ingest_state == VideoState.ENCODED and not video.needs_splicing,
        "last_error": video.last_error,
        "fps": f"{fps.numerator}/{fps.denominator}" if fps else None,
        "fps_float": float(fps) if fps else None,
        "frame_count": video.frame_count,
        "duration_seconds": video.duration_seconds,
        "width": video.width,
        "height": video.height,
        "progress": video.progress,
        "original_url": video.original_url,
        "original_key": video.filepath,
        "proxy_key": video.proxy_filepath,
        "master_key": video.master_filepath,
        "inserted_at": video.inserted_at.isoformat() if video.inserted_at else None,
    }


def clip_summary(clip: Clip) -> dict[str, Any]:
    return {
        "id": clip.id,
        "identifier": clip.clip_identifier,
        "start_frame": clip.start_frame,
        "end_frame": clip.end_frame,
        "state": clip.ingest_state,
    }


def _clips(session: Session, video_id: int) -> list[Clip]:
    query = select(Clip).where(Clip.source_video_id == video_id).order_by(Clip.start_frame, Clip.id)  # type: ignore[arg-type]
    return list(session.exec(query).all())


def list_videos(session: Session) -> list[dict[str, Any]]:
    videos = session.exec(select(SourceVideo).order_by(SourceVideo.id)).all()  # type: ignore[arg-type]
    clips: dict[int, list[dict[str, Any]]] = {}
    for clip in session.exec(select(Clip).order_by(Clip.start_frame, Clip.id)).all():  # type: ignore[arg-type]
        clips.setdefault(clip.source_video_id, []).append(clip_summary(clip))
    chunks = chunk_counts(session)
    return [{**video_summary(v, chunks.get(v.id or 0)), "clips": clips.get(v.id or 0, [])} for v in videos]


def show_video(session: Session, video_id: int) -> dict[str, Any]:
    video = session.get(SourceVideo, video_id)
    if video is None:
        raise NotFound(f"Video {video_id} does not exist.")
    return {
        **video_summary(video, chunk_counts(session, [video_id]).get(video_id)),
        "master_error": claims.last_error(session, Stage.MASTER, video_id),
        "clips": [clip_summary(c) for c in _clips(session, video_id)],
    }
