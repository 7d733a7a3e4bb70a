"""Queries about videos, shaped for the CLI's JSON and the videos page."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from heaters.errors import NotFound
from heaters.models import Clip, SourceVideo, VideoState
from heaters.pipeline import claims
from heaters.pipeline.stages import Stage


def video_summary(video: SourceVideo) -> dict[str, Any]:
    fps = video.fps
    return {
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
    return [{**video_summary(v), "clips": clips.get(v.id or 0, [])} for v in videos]


def show_video(session: Session, video_id: int) -> dict[str, Any]:
    video = session.get(SourceVideo, video_id)
    if video is None:
        raise NotFound(f"Video {video_id} does not exist.")
    return {
        **video_summary(video),
        "master_error": claims.last_error(session, Stage.MASTER, video_id),
        "clips": [clip_summary(c) for c in _clips(session, video_id)],
    }
