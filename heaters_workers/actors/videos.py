"""Video pipeline actors: each receives an id and hands it to the stage runner. Nothing else."""

from __future__ import annotations

from typing import Any

import dramatiq

from heaters.pipeline.runner import run_stage
from heaters.pipeline.stages import Stage
from heaters.videos import chunk_stages
from heaters.videos import stages as video_stages

# Retries are ours (job_claims, with backoff and a cap), so Dramatiq's own are off for these actors.
# TimeLimit cannot stop a thread blocked on a child process; every subprocess has its own timeout.
OPTIONS: dict[str, Any] = {"max_retries": 0, "time_limit": 24 * 3600 * 1000}


def _run(stage: Stage, video_id: int, work: video_stages.StageWork) -> None:
    run_stage(stage, video_id, work)


@dramatiq.actor(actor_name=Stage.DOWNLOAD.actor_name, queue_name=Stage.DOWNLOAD.queue.value, **OPTIONS)
def download(video_id: int) -> None:
    _run(Stage.DOWNLOAD, video_id, video_stages.run_download)


@dramatiq.actor(actor_name=Stage.ENCODE.actor_name, queue_name=Stage.ENCODE.queue.value, **OPTIONS)
def encode(video_id: int) -> None:
    _run(Stage.ENCODE, video_id, video_stages.run_encode)


@dramatiq.actor(actor_name=Stage.DETECT_SCENES.actor_name, queue_name=Stage.DETECT_SCENES.queue.value, **OPTIONS)
def detect_scenes(video_id: int) -> None:
    _run(Stage.DETECT_SCENES, video_id, video_stages.run_detect_scenes)


@dramatiq.actor(actor_name=Stage.MASTER.actor_name, queue_name=Stage.MASTER.queue.value, **OPTIONS)
def encode_master(video_id: int) -> None:
    _run(Stage.MASTER, video_id, video_stages.run_encode_master)


@dramatiq.actor(actor_name=Stage.ENCODE_CHUNK.actor_name, queue_name=Stage.ENCODE_CHUNK.queue.value, **OPTIONS)
def encode_chunk(chunk_id: int) -> None:
    _run(Stage.ENCODE_CHUNK, chunk_id, chunk_stages.run_encode_chunk)


@dramatiq.actor(actor_name=Stage.JOIN_PROXY.actor_name, queue_name=Stage.JOIN_PROXY.queue.value, **OPTIONS)
def join_proxy(video_id: int) -> None:
    _run(Stage.JOIN_PROXY, video_id, chunk_stages.run_join_proxy)
