"""Pausing a queue: its worker takes no new message until it is resumed, across a restart; others run on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from heaters import jobs
from heaters.db import unit_of_work
from heaters.pipeline.stages import Stage
from tests.fixtures.workers import Worker, claim_row, run_cli, wait_for

WAITING, SENTINEL = 999_991, 999_992  # clips that do not exist: each message ends in a failed claim


def _logged(worker: Worker, text: str, times: int = 1) -> bool:
    return worker.log.exists() and worker.log.read_text().count(text) >= times


def test_a_paused_queue_waits_across_a_restart_and_runs_when_resumed(
    engine: Engine, pipeline_env: dict[str, str], start_worker: Callable[..., Worker], broker: Any
) -> None:
    refused = run_cli(pipeline_env, "jobs", "pause", "bogus")
    assert refused.returncode == 1 and "Unknown queue 'bogus'" in refused.stderr
    assert run_cli(pipeline_env, "jobs", "pause", "exports").returncode == 0
    worker = start_worker("exports,background_jobs")
    wait_for(lambda: _logged(worker, "queue.paused exports"), timeout=60, what="exports paused", logs=[worker.log])

    with unit_of_work():
        jobs.enqueue(Stage.EXPORT.actor_name, Stage.EXPORT.queue.value, WAITING)
        jobs.enqueue(Stage.KEYFRAMES.actor_name, Stage.KEYFRAMES.queue.value, SENTINEL)
    # The other queue's message runs to its end meanwhile; the paused one stays in Redis, never claimed.
    wait_for(lambda: claim_row(engine, Stage.KEYFRAMES.key, SENTINEL), timeout=60, what="the other queue")
    assert claim_row(engine, Stage.EXPORT.key, WAITING) is None
    assert broker.client.llen("dramatiq:exports") == 1

    worker.stop()  # the pause is not the process's: a new worker starts paused
    again = start_worker("exports")
    wait_for(lambda: _logged(again, "queue.paused exports"), timeout=60, what="paused again", logs=[again.log])
    assert claim_row(engine, Stage.EXPORT.key, WAITING) is None
    assert "exports" in run_cli(pipeline_env, "jobs", "paused").stdout

    assert run_cli(pipeline_env, "jobs", "resume", "exports").returncode == 0
    wait_for(lambda: _logged(again, "queue.resumed exports"), timeout=60, what="resumed", logs=[again.log])
    claim = wait_for(lambda: claim_row(engine, Stage.EXPORT.key, WAITING), timeout=60, what="the waiting export")
    assert claim["attempts"] == 1
    assert "No queue is paused." in run_cli(pipeline_env, "jobs", "paused").stdout
