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

    def topics(self, entity_id: int) -> list[str]:
        """Where the live pages hear of this stage's runs: every stage today works on a video."""
        return ["stages", "videos", f"video:{entity_id}"]

    @property
    def key(self) -> str:
        """The name stored in `job_claims.stage`."""
        return self.actor_name
