"""LOG_FORMAT=json: one JSON object a line, with the job, queue, entity and attempt as fields."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from heaters import jobs
from heaters.db import unit_of_work
from heaters.logs import JsonFormatter
from heaters.pipeline.stages import Stage
from tests.fixtures.workers import Worker, claim_row, wait_for

MISSING_CLIP = 999_993


def test_the_formatter_keeps_the_extra_fields_and_the_exception() -> None:
    record = logging.LogRecord("heaters.x", logging.ERROR, __file__, 1, "clip %s failed", (7,), None)
    record.job, record.entity_id = "clip.export", 7
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["level"], line["job"], line["entity_id"]) == (
        "clip 7 failed",
        "error",
        "clip.export",
        7,
    )
    assert "ValueError: boom" in line["exception"] and "args" not in line and "msg" not in line


def _json_lines(worker: Worker) -> list[dict[str, Any]]:
    found = []
    for raw in worker.log.read_text().splitlines():
        text = raw.split("| ", 1)[-1]  # the supervisor prefixes each child's lines with its name
        if text.startswith("{"):
            found.append(json.loads(text))
    return found


def test_a_worker_logs_its_jobs_as_json(
    engine: Engine, pipeline_env: dict[str, str], start_worker: Callable[..., Worker], broker: Any
) -> None:
    worker = start_worker("exports", LOG_FORMAT="json")
    with unit_of_work():
        jobs.enqueue(Stage.EXPORT.actor_name, Stage.EXPORT.queue.value, MISSING_CLIP)
    wait_for(lambda: claim_row(engine, Stage.EXPORT.key, MISSING_CLIP), timeout=60, what="the job", logs=[worker.log])

    def started() -> list[dict[str, Any]]:
        return [line for line in _json_lines(worker) if line["message"].startswith("clip.export.started")]

    (line,) = wait_for(started, timeout=30, what="a JSON line for the job", logs=[worker.log])
    assert (line["job"], line["queue"], line["entity"], line["entity_id"], line["attempt"]) == (
        "clip.export",
        "exports",
        "clip",
        MISSING_CLIP,
        1,
    )
    assert line["level"] == "info" and line["logger"] == "heaters.pipeline.runner" and line["pid"] > 0
