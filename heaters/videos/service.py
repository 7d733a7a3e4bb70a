"""The only writer of `source_videos.ingest_state` (DESIGN point 2).

Each change is one UPDATE that checks the current state in its WHERE clause; zero rows means the
video was not in an allowed state, reported as InvalidTransition. Callers own the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from heaters.errors import InvalidTransition, NotFound
from heaters.models import SourceVideo, VideoState
from heaters.pipeline import claims
from heaters.pipeline.stages import Stage
from heaters.transitions import guarded_update

V = VideoState

# to_state: the states it may be entered from.
TRANSITIONS: dict[VideoState, frozenset[VideoState]] = {
    V.DOWNLOADING: frozenset({V.NEW, V.DOWNLOADING}),
    V.DOWNLOADED: frozenset({V.NEW, V.DOWNLOADING}),
    V.DOWNLOAD_FAILED: frozenset({V.NEW, V.DOWNLOADING}),
    V.ENCODING: frozenset({V.DOWNLOADED, V.ENCODING}),
    V.ENCODED: frozenset({V.ENCODING}),
    V.ENCODING_FAILED: frozenset({V.DOWNLOADED, V.ENCODING}),
    V.DETECTING_SCENES: frozenset({V.ENCODED, V.DETECTING_SCENES}),
    V.DETECT_SCENES_FAILED: frozenset({V.ENCODED, V.DETECTING_SCENES}),
}
# Finishing detection returns to `encoded` with needs_splicing = false (the reference's "done"); from
# `encoded` itself when a re-run finds the clips a previous run already wrote.
DETECTION_DONE_FROM = frozenset({V.DETECTING_SCENES, V.ENCODED})

# A failed video, retried, goes back to where its stage starts.
RETRY_TO: dict[VideoState, tuple[VideoState, Stage]] = {
    V.DOWNLOAD_FAILED: (V.NEW, Stage.DOWNLOAD),
    V.ENCODING_FAILED: (V.DOWNLOADED, Stage.ENCODE),
    V.DETECT_SCENES_FAILED: (V.ENCODED, Stage.DETECT_SCENES),
}


def transition(
    session: Session,
    video_id: int,
    to: VideoState,
    *,
    allowed_from: frozenset[VideoState] | None = None,
    **values: Any,
) -> None:
    """Move a video to `to` (and set other columns) only from an allowed state."""
    allowed = allowed_from if allowed_from is not None else TRANSITIONS[to]
    guarded_update(session, SourceVideo, "video", video_id, to, allowed, **values)


def mark_failed(session: Session, video_id: int, failed_state: VideoState, error: str) -> None:
    transition(session, video_id, failed_state, last_error=error, progress=None)


def set_progress(session: Session, video_id: int, state: VideoState, percent: float) -> bool:
    """Progress of the running stage; ignored unless the video is still in that stage."""
    result = session.execute(
        update(SourceVideo)
        .where(SourceVideo.id == video_id)  # type: ignore[arg-type]
        .where(SourceVideo.ingest_state == state.value)  # type: ignore[arg-type]
        .values(progress=round(max(0.0, min(100.0, percent)), 1))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def note_error(session: Session, video_id: int, message: str) -> None:
    """A visible error that changes no state (a retry is coming, or an optional stage failed)."""
    session.execute(
        update(SourceVideo).where(SourceVideo.id == video_id).values(last_error=message)  # type: ignore[arg-type]
    )


def set_master(session: Session, video_id: int, key: str) -> None:
    session.execute(
        update(SourceVideo).where(SourceVideo.id == video_id).values(master_filepath=key)  # type: ignore[arg-type]
    )


def finish_detection(session: Session, video_id: int) -> None:
    transition(
        session,
        video_id,
        V.ENCODED,
        allowed_from=DETECTION_DONE_FROM,
        needs_splicing=False,
        spliced_at=datetime.now(UTC),
        progress=None,
        last_error=None,
    )


def retry(session: Session, video_id: int) -> Stage:
    """Resume a failed video from the start of its failed stage, with a fresh attempt budget."""
    video = session.get(SourceVideo, video_id)
    if video is None:
        raise NotFound(f"video {video_id} does not exist")
    state = VideoState(video.ingest_state)
    if state not in RETRY_TO:
        failed_master = video.master_filepath is None and video.proxy_filepath is not None
        if failed_master and claims.is_failed(session, Stage.MASTER, video_id):
            claims.reset(session, Stage.MASTER, video_id)
            return Stage.MASTER
        raise InvalidTransition("video", video_id, "retry", state.value)
    to, stage = RETRY_TO[state]
    transition(session, video_id, to, allowed_from=frozenset({state}), last_error=None, progress=None)
    claims.reset(session, stage, video_id)
    return stage
