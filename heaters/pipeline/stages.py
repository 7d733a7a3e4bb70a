"""Every pipeline stage: its actor's name and queue. Services enqueue by these names only."""

from __future__ import annotations

from enum import Enum

from heaters.queues import Queue


class Stage(Enum):
    DOWNLOAD = ("video.download", Queue.MEDIA_PROCESSING)
    ENCODE = ("video.encode", Queue.MEDIA_PROCESSING)
    DETECT_SCENES = ("video.detect_scenes", Queue.MEDIA_PROCESSING)
    MASTER = ("video.encode_master", Queue.MEDIA_PROCESSING)

    def __init__(self, actor_name: str, queue: Queue) -> None:
        self.actor_name = actor_name
        self.queue = queue

    @property
    def key(self) -> str:
        """The name stored in `job_claims.stage`."""
        return self.actor_name
