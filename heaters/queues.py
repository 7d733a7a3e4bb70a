"""The canonical queues and the pure rules for choosing which ones a process consumes."""

from __future__ import annotations

from enum import StrEnum

from heaters.errors import ConfigError, HeatersError


class Queue(StrEnum):
    DEFAULT = "default"
    MEDIA_PROCESSING = "media_processing"
    EXPORTS = "exports"
    TEMP_CLIPS = "temp_clips"
    BACKGROUND_JOBS = "background_jobs"
    MAINTENANCE = "maintenance"
    # The archival master: long, and never on anyone's path to review, so it has a queue (and a process) of
    # its own instead of holding media_processing's one thread while another video waits to be encoded.
    ARCHIVAL = "archival"


# Threads per queue. Media work is CPU-bound and ffmpeg already uses every core, so one at a time.
CONCURRENCY: dict[Queue, int] = {
    Queue.DEFAULT: 3,
    Queue.MEDIA_PROCESSING: 1,
    Queue.EXPORTS: 2,
    Queue.TEMP_CLIPS: 4,
    Queue.BACKGROUND_JOBS: 2,
    Queue.MAINTENANCE: 1,
    Queue.ARCHIVAL: 1,
}


def allowed_names() -> list[str]:
    return sorted(q.value for q in Queue)


def queue_named(name: str) -> Queue:
    """One queue by name, for a command or a button; an unknown one is refused naming the allowed ones."""
    if name not in allowed_names():
        raise HeatersError(f"Unknown queue {name!r}. Allowed: {', '.join(allowed_names())}")
    return Queue(name)


def parse_queues(value: str | None) -> list[Queue]:
    """`WORKER_QUEUES`: comma-separated, trimmed, blanks and duplicates dropped; unset means all.

    An unknown name is a configuration error that names it and lists the allowed ones.
    """
    if value is None:
        return list(Queue)
    names: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if name and name not in names:
            names.append(name)
    unknown = [n for n in names if n not in Queue.__members__.values()]
    if unknown:
        raise ConfigError(
            f"WORKER_QUEUES names unknown queue(s): {', '.join(unknown)}. Allowed: {', '.join(allowed_names())}"
        )
    return [Queue(n) for n in names]


def scheduler_wanted(explicit: bool | None, queues: list[Queue]) -> bool:
    """SCHEDULER_ENABLED wins when set; otherwise the schedule runs where `default` is consumed."""
    return explicit if explicit is not None else Queue.DEFAULT in queues
