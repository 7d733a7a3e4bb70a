"""The schedule and queue selection with real processes: two schedulers make one Dispatcher run a minute;
a worker consumes only the queues it is given."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from heaters import jobs
from heaters.db import unit_of_work
from heaters.pipeline.stages import Stage
from heaters.supervisor import stop_process_group
from tests.fixtures.workers import HEATERS, ROOT, Worker, claim_row, wait_for

RAN = re.compile(r"schedule\.dispatch ran (\S+)")
SKIPPED = re.compile(r"schedule\.dispatch skipped (\S+): another")
ONLY_EXPORT, NOT_CONSUMED = 999_981, 999_982  # clips that do not exist: a message that runs ends in a failed claim


@pytest.fixture
def schedulers(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[int], list[Path]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(count: int) -> list[Path]:
        logs = []
        for n in range(count):
            log = tmp_path / f"scheduler{n}.log"
            with log.open("wb") as out:
                started.append(
                    subprocess.Popen(
                        [HEATERS, "scheduler"],
                        cwd=ROOT,
                        env=pipeline_env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            logs.append(log)
        return logs

    yield start
    for proc in started:
        stop_process_group(proc.pid, popen=proc, timeout=30)


def test_two_schedulers_for_three_minutes_make_exactly_three_dispatcher_runs(
    engine: Engine, start_worker: Callable[..., Worker], schedulers: Callable[[int], list[Path]]
) -> None:
    worker = start_worker("default", SCHEDULER_ENABLED="false")  # runs the ticks; sends none itself
    logs = [worker.log, *schedulers(2)]

    def seen() -> tuple[list[str], list[str]]:
        text = worker.log.read_text() if worker.log.exists() else ""
        return RAN.findall(text), SKIPPED.findall(text)

    # Each scheduler sends a tick a minute; the worker runs both; one claims the minute, the other skips.
    wait_for(lambda: len(seen()[0]) >= 3 and len(seen()[1]) >= 3, timeout=330, what="three minutes", logs=logs[:1])
    ran, skipped = seen()
    assert len(ran) == 3 and len(set(ran)) == 3, ran  # one run in each of three distinct minutes
    assert sorted(skipped) == sorted(ran), (ran, skipped)  # and the other scheduler's tick of each minute skipped


def test_a_worker_consumes_only_its_queues(engine: Engine, start_worker: Callable[..., Worker], broker: Any) -> None:
    worker = start_worker("exports")
    with unit_of_work():
        jobs.enqueue(Stage.KEYFRAMES.actor_name, Stage.KEYFRAMES.queue.value, NOT_CONSUMED)  # background_jobs
        jobs.enqueue(Stage.EXPORT.actor_name, Stage.EXPORT.queue.value, ONLY_EXPORT)
    wait_for(lambda: claim_row(engine, Stage.EXPORT.key, ONLY_EXPORT), timeout=60, what="the export", logs=[worker.log])
    assert claim_row(engine, Stage.KEYFRAMES.key, NOT_CONSUMED) is None
    assert broker.client.llen("dramatiq:background_jobs") == 1  # still waiting in Redis, untouched
    assert "worker:background_jobs" not in worker.log.read_text()  # no process was started for it
