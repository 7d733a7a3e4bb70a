"""The jobs board (/admin/jobs, `heaters jobs list|retry`) against the real Redis and PostgreSQL."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from heaters import job_board, jobs, queue_control
from heaters.db import unit_of_work
from heaters.errors import HeatersError
from heaters.queues import Queue
from heaters.settings import get_settings
from tests.fixtures.workers import run_cli


def _clip(engine: Engine, state: str) -> int:
    with engine.begin() as db:
        video = db.execute(
            text(
                "INSERT INTO source_videos (title, ingest_state, fps_num, fps_den) "
                "VALUES ('v', 'encoded', 25, 1) RETURNING id"
            )
        ).scalar_one()
        return int(
            db.execute(
                text(
                    "INSERT INTO clips (source_video_id, clip_identifier, start_frame, end_frame, ingest_state, "
                    "last_error) VALUES (:v, :i, 0, 50, :s, 'boom') RETURNING id"
                ),
                {"v": video, "i": f"{video}_segment_001", "s": state},
            ).scalar_one()
        )


def _claim(engine: Engine, stage: str, entity: int, state: str, **extra: Any) -> None:
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO job_claims (stage, entity_id, state, attempts, worker_id, lease_until, last_error) "
                "VALUES (:stage, :entity, :state, :attempts, :worker, :lease, :error)"
            ),
            {
                "stage": stage,
                "entity": entity,
                "state": state,
                "attempts": extra.get("attempts", 1),
                "worker": extra.get("worker"),
                "lease": extra.get("lease"),
                "error": extra.get("error"),
            },
        )


def test_the_board_reads_queues_workers_claims_and_the_schedule(engine: Engine, broker: Any) -> None:
    redis = broker.client
    redis.flushdb()
    with unit_of_work():
        jobs.enqueue("clip.export", "exports", 1)
        jobs.enqueue("clip.export", "exports", 2, delay_ms=60_000)
    queue_control.pause(redis, Queue.EXPORTS)
    now_ms = datetime.now(UTC).timestamp() * 1000
    redis.zadd("dramatiq:__heartbeats__", {"host:1:fresh": now_ms - 2_000, "host:2:gone": now_ms - 120_000})
    failed, waiting = _clip(engine, "export_failed"), _clip(engine, "exporting")
    _claim(engine, "clip.export", failed, "failed", attempts=5, error="The exported clip has 3 frames instead of 50.")
    _claim(engine, "clip.export", waiting, "running", worker="host:1:77", lease=datetime.now(UTC))

    with unit_of_work() as session:
        board = job_board.board(session, redis, get_settings())
    exports = next(q for q in board["queues"] if q["queue"] == "exports")
    assert (exports["ready"], exports["delayed"], exports["dead"], exports["paused"]) == (1, 1, 0, True)
    assert all(not q["paused"] for q in board["queues"] if q["queue"] != "exports")
    ours = [(w["worker"], w["alive"]) for w in board["workers"] if w["worker"].startswith("host:")]
    assert ours == [("host:1:fresh", True), ("host:2:gone", False)]  # (this process's broker beats too)
    assert [(r["stage"], r["entity_id"], r["worker"]) for r in board["running"]] == [
        ("clip.export", waiting, "host:1:77")
    ]
    (failure,) = board["failures"]
    assert (failure["entity_id"], failure["attempts"], failure["error"]) == (
        failed,
        5,
        "The exported clip has 3 frames instead of 50.",
    )
    ticks = {t["job"]: t for t in board["ticks"]}
    assert set(ticks) == {"dispatch", "playback_cleanup"}
    assert datetime.fromisoformat(ticks["dispatch"]["next_run"]) > datetime.now(UTC)
    redis.flushdb()


def test_retry_goes_through_the_entity_and_bad_requests_change_nothing(
    engine: Engine, broker: Any, app_env: dict[str, str]
) -> None:
    broker.client.flushdb()
    failed = _clip(engine, "export_failed")
    _claim(engine, "clip.export", failed, "failed", attempts=5, error="boom")
    env = {**os.environ, **app_env}
    unknown = run_cli(env, "jobs", "retry", "clip.bogus", str(failed))
    assert unknown.returncode == 1 and "Unknown stage 'clip.bogus'" in unknown.stderr
    done = run_cli(env, "jobs", "retry", "clip.export", str(failed))
    assert done.returncode == 0, done.stderr
    with engine.connect() as db:
        state = db.execute(text("SELECT ingest_state, last_error FROM clips WHERE id = :i"), {"i": failed}).one()
        claim = db.execute(
            text("SELECT state, attempts FROM job_claims WHERE stage = 'clip.export' AND entity_id = :i"), {"i": failed}
        ).one()
    assert tuple(state) == ("review_approved", None) and tuple(claim) == ("queued", 0)
    assert broker.client.hlen("dramatiq:exports.msgs") == 1  # the message went out after the commit
    again = run_cli(env, "jobs", "retry", "clip.export", str(failed))  # no longer failed: refused, nothing moves
    assert again.returncode == 1 and "cannot move to retry" in again.stderr
    listed = json.loads(run_cli(env, "jobs", "list", "--json").stdout)
    assert set(listed) == {"queues", "workers", "running", "failures", "ticks", "dead"}
    try:
        with unit_of_work() as session:
            job_board.retry(session, "video.nothing", 1)
    except HeatersError as error:
        assert "Unknown stage" in str(error)
    else:
        raise AssertionError("an unknown stage must be refused")
