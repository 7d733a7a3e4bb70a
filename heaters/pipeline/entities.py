"""What the runner writes to an entity when its stage fails, retries or makes progress, for every entity.

The states come from the stage's declaration (`Stage.failed_state`, `Stage.running_state`); the writes
go through the entity's own service (`videos.service`, `clips.service`), the only writers of its state.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlmodel import Session

from heaters import events
from heaters.clips import service as clips_service
from heaters.db import unit_of_work
from heaters.models import ClipState, VideoState
from heaters.pipeline.stages import Entity, Stage
from heaters.videos import service as videos_service

# Stages that may fail without failing their entity: the error is shown, the entity stays usable.
OPTIONAL_LABEL: dict[Stage, str] = {
    Stage.MASTER: "Master encode",
    Stage.BACKFILL: "Embedding of the default variant",
}


def note_error(session: Session, entity: Entity, entity_id: int, message: str) -> None:
    """A visible error that changes no state (a retry is coming, or an optional stage failed)."""
    session.execute(
        text(f"UPDATE {entity.table} SET last_error = :message WHERE id = :id"), {"message": message, "id": entity_id}
    )


def mark_failed(session: Session, stage: Stage, entity_id: int, message: str) -> None:
    """The stage failed for good: its entity enters the stage's failure state, with the error to show."""
    failed = stage.failed_state
    if failed is None:
        note_error(session, stage.entity, entity_id, f"{OPTIONAL_LABEL.get(stage, stage.key)} failed: {message}")
    elif stage.entity is Entity.VIDEO:
        videos_service.mark_failed(session, entity_id, VideoState(failed), message)
    elif stage.entity is Entity.CHUNK:  # a chunk that cannot be encoded fails its video, which can be retried
        note_error(session, Entity.CHUNK, entity_id, message)
        video_id, index = _chunk_video(session, entity_id)
        videos_service.mark_failed(session, video_id, VideoState(failed), f"Chunk {index + 1}: {message}")
    else:
        clips_service.transition(session, entity_id, ClipState(failed), last_error=message)


def _chunk_video(session: Session, chunk_id: int) -> tuple[int, int]:
    row = session.execute(
        text("SELECT source_video_id, chunk_index FROM proxy_chunks WHERE id = :id"), {"id": chunk_id}
    ).one()
    return int(row[0]), int(row[1])


def note_retry(stage: Stage) -> Callable[[Session, int, str], None]:
    def note(session: Session, entity_id: int, message: str) -> None:
        note_error(session, stage.entity, entity_id, message)
        if stage.entity is Entity.CHUNK:  # shown on the video, whose page has no chunk of its own
            video_id, index = _chunk_video(session, entity_id)
            note_error(session, Entity.VIDEO, video_id, f"Chunk {index + 1}: {message}")

    return note


def failure_handler(stage: Stage) -> Callable[[Session, int, str], None]:
    def handler(session: Session, entity_id: int, message: str) -> None:
        mark_failed(session, stage, entity_id, message)  # the runner publishes `stage.failed` after the commit

    return handler


def progress_writer(stage: Stage) -> Callable[[int, float], None] | None:
    """Videos show a percentage while a stage runs; clip stages are short and show their state only."""
    running = stage.running_state
    if stage.entity is not Entity.VIDEO or running is None:
        return None

    def write(video_id: int, percent: float) -> None:
        with unit_of_work() as session:
            videos_service.set_progress(session, video_id, VideoState(running), percent)
        events.publish(
            "video.progress",
            topics=events.video_topics(video_id),
            video_id=video_id,
            stage=stage.key,
            progress=round(percent, 1),
        )

    return write
