"""Clip pipeline actors (after review): each receives a clip id and hands it to the stage runner."""

from __future__ import annotations

import dramatiq

from heaters.clips import stages as clip_stages
from heaters.pipeline.runner import run_stage
from heaters.pipeline.stages import Stage
from heaters_workers.actors.videos import OPTIONS


@dramatiq.actor(actor_name=Stage.EXPORT.actor_name, queue_name=Stage.EXPORT.queue.value, **OPTIONS)
def export(clip_id: int) -> None:
    run_stage(Stage.EXPORT, clip_id, clip_stages.run_export)


@dramatiq.actor(actor_name=Stage.KEYFRAMES.actor_name, queue_name=Stage.KEYFRAMES.queue.value, **OPTIONS)
def keyframes(clip_id: int) -> None:
    run_stage(Stage.KEYFRAMES, clip_id, clip_stages.run_keyframes)


@dramatiq.actor(actor_name=Stage.EMBED.actor_name, queue_name=Stage.EMBED.queue.value, **OPTIONS)
def embed(clip_id: int) -> None:
    run_stage(Stage.EMBED, clip_id, clip_stages.run_embed)


@dramatiq.actor(actor_name=Stage.BACKFILL.actor_name, queue_name=Stage.BACKFILL.queue.value, **OPTIONS)
def backfill_embedding(clip_id: int) -> None:
    run_stage(Stage.BACKFILL, clip_id, clip_stages.run_backfill)
