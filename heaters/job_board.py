"""What /admin/jobs and `heaters jobs` show and do: queues, workers, running claims, failures, the schedule.

Reads come from where the truth is (Redis for messages and worker heartbeats, PostgreSQL for claims);
retries go through the entity's own service, the same one the Retry buttons on /videos and /clips use.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pendulum
from periodiq import CronSpec
from sqlalchemy import text
from sqlmodel import Session

from heaters import dead_letters, queue_control
from heaters.errors import HeatersError
from heaters.pipeline.dispatch import schedule
from heaters.pipeline.stages import Entity, Stage
from heaters.queues import Queue
from heaters.settings import Settings

NAMESPACE = "dramatiq"
HEARTBEAT_TIMEOUT_MS = 60_000  # Dramatiq's Redis broker considers a worker dead after this
DEAD_SHOWN = 20  # dead letters listed per queue (the counts are complete)


def queues(redis: Any) -> list[dict[str, Any]]:
    paused = queue_control.paused(redis)
    rows = []
    for queue in Queue:
        counts = {
            kind: int(redis.hlen(f"{NAMESPACE}:{name}.msgs"))
            for kind, name in (("ready", queue.value), ("delayed", f"{queue.value}.DQ"), ("dead", f"{queue.value}.XQ"))
        }
        rows.append({"queue": queue.value, **counts, "paused": queue.value in paused})
    return rows


def workers(redis: Any, *, now_ms: float | None = None) -> list[dict[str, Any]]:
    """Worker processes by their broker heartbeat (every few seconds while they consume)."""
    now_ms = now_ms if now_ms is not None else time.time() * 1000
    rows = []
    for worker_id, beat in redis.zrange(f"{NAMESPACE}:__heartbeats__", 0, -1, withscores=True):
        age = max(0.0, (now_ms - float(beat)) / 1000)
        name = worker_id.decode() if isinstance(worker_id, bytes) else str(worker_id)
        rows.append({"worker": name, "seen_seconds_ago": round(age, 1), "alive": age * 1000 < HEARTBEAT_TIMEOUT_MS})
    return sorted(rows, key=lambda r: r["seen_seconds_ago"])


def running(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT stage, entity_id, worker_id, attempts, lease_until FROM job_claims "
            "WHERE state = 'running' AND stage NOT LIKE 'tick:%' ORDER BY lease_until"
        )
    ).all()
    return [
        {
            "stage": r.stage,
            "entity_id": r.entity_id,
            "worker": r.worker_id,
            "attempt": r.attempts,
            "lease_until": r.lease_until.isoformat() if r.lease_until else None,
        }
        for r in rows
    ]


def failures(session: Session, *, limit: int = 50) -> list[dict[str, Any]]:
    """Work that failed for good (waiting for a person) or is waiting to retry, newest first."""
    rows = session.execute(
        text(
            "SELECT stage, entity_id, state, attempts, last_error, next_attempt_at, updated_at FROM job_claims "
            "WHERE state IN ('failed', 'retrying') AND stage NOT LIKE 'tick:%' ORDER BY updated_at DESC LIMIT :n"
        ),
        {"n": limit},
    ).all()
    return [
        {
            "stage": r.stage,
            "entity_id": r.entity_id,
            "state": r.state,
            "attempts": r.attempts,
            "error": r.last_error or "",
            "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
            "at": r.updated_at.isoformat() if r.updated_at else None,
        }
        for r in rows
    ]


TICKS = {"dispatch": "dispatcher_cron", "playback_cleanup": "cleanup_cron"}


def ticks(session: Session, settings: Settings, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each scheduled job: when its tick last ran (its claim in job_claims) and when the next one is due."""
    now = now or datetime.now(UTC)
    last = {
        str(r.stage).removeprefix("tick:"): r.updated_at
        for r in session.execute(text("SELECT stage, updated_at FROM job_claims WHERE stage LIKE 'tick:%'")).all()
    }
    rows = []
    for name, field in TICKS.items():
        cron = str(getattr(settings, field))
        upcoming = CronSpec.parse(cron).next_valid_date(pendulum.instance(now))  # periodiq's own reckoning
        rows.append(
            {
                "job": name,
                "cron": cron,
                "last_run": last[name].isoformat() if last.get(name) else None,
                "next_run": upcoming.isoformat(),
            }
        )
    return rows


def retry(session: Session, stage_key: str, entity_id: int) -> Stage:
    """Another go for failed work, through its entity's service; the message leaves after commit."""
    stage = next((s for s in Stage if s.key == stage_key), None)
    if stage is None:
        raise HeatersError(f"Unknown stage {stage_key!r}.")
    if stage.failed_state is None:  # an optional stage (master, backfill): only its claim failed
        from heaters.pipeline import claims

        claims.reset(session, stage, entity_id)
        again = stage
    elif stage.entity is Entity.VIDEO:
        from heaters.videos import service as videos

        again = videos.retry(session, entity_id)
    else:
        from heaters.clips import service as clips

        again = clips.retry(session, entity_id)
    schedule(session, again, entity_id)
    return again


def board(session: Session, redis: Any, settings: Settings) -> dict[str, Any]:
    return {
        "queues": queues(redis),
        "workers": workers(redis),
        "running": running(session),
        "failures": failures(session),
        "ticks": ticks(session, settings),
        "dead": [row for queue in Queue for row in dead_letters.listing(redis, queue, limit=DEAD_SHOWN)],
    }
