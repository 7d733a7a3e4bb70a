"""The playback cache's actor: one temp clip per message, by its `temp_clips` id."""

from __future__ import annotations

import dramatiq

from heaters.playback import generate, service
from heaters.queues import Queue


# Attempts are the row's: a failure is shown with a Retry, and a lost message is sent again on request.
@dramatiq.actor(actor_name=service.ACTOR, queue_name=Queue.TEMP_CLIPS.value, max_retries=0, time_limit=10 * 60_000)
def generate_temp_clip(temp_clip_id: int) -> None:
    generate.generate(temp_clip_id)
