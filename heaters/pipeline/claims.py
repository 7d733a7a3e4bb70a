"""Claims on pipeline work, in Postgres (DESIGN point 4): at most one live claim per (stage, entity).

Each function is one conditional statement, so two workers or two schedulers racing for the same
row cannot both win. Callers own the transaction (these never commit).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlmodel import Session

from heaters.errors import LeaseLost
from heaters.pipeline.policy import BASE_BACKOFF_SECONDS, backoff_seconds, exhausted
from heaters.pipeline.stages import Stage

# A queued message not started within this is assumed lost and sent again by the Dispatcher. A message
# that was only waiting behind long jobs then runs twice at most: the second finds the claim and stops.
QUEUED_TTL_SECONDS = 600


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass(frozen=True)
class Claim:
    stage: Stage
    entity_id: int
    worker_id: str
    attempts: int


def mark_queued(session: Session, stage: Stage, entity_id: int) -> bool:
    """Record that a message is on its way; False when the work is already queued, running or waiting."""
    row = session.execute(
        text(
            """
            INSERT INTO job_claims (stage, entity_id, state, lease_until)
            VALUES (:stage, :entity, 'queued', now() + make_interval(secs => :ttl))
            ON CONFLICT (stage, entity_id) DO UPDATE
               SET state = 'queued', lease_until = EXCLUDED.lease_until, worker_id = NULL,
                   -- work done before and wanted again (a new approval, a new variant) starts a fresh count
                   attempts = CASE WHEN job_claims.state = 'succeeded' THEN 0 ELSE job_claims.attempts END
             WHERE job_claims.state = 'succeeded'
                OR (job_claims.state IN ('queued', 'running') AND job_claims.lease_until < now())
                OR (job_claims.state = 'retrying' AND job_claims.next_attempt_at <= now())
            RETURNING id
            """
        ),
        {"stage": stage.key, "entity": entity_id, "ttl": QUEUED_TTL_SECONDS},
    ).first()
    return row is not None


def claim(session: Session, stage: Stage, entity_id: int, *, lease_seconds: int, worker_id: str) -> Claim | None:
    """Take the work for this worker, counting an attempt; None when someone else holds it or it is done.

    Only queued work, an expired lease or a retry that is due can be taken: a stale duplicate message
    for finished work (Redis redelivers a killed worker's messages) finds nothing to do.
    """
    row = session.execute(
        text(
            """
            INSERT INTO job_claims (stage, entity_id, state, attempts, worker_id, lease_until)
            VALUES (:stage, :entity, 'running', 1, :worker, now() + make_interval(secs => :lease))
            ON CONFLICT (stage, entity_id) DO UPDATE
               SET state = 'running', attempts = job_claims.attempts + 1, worker_id = :worker,
                   lease_until = EXCLUDED.lease_until, next_attempt_at = NULL
             WHERE job_claims.state = 'queued'
                OR (job_claims.state = 'running' AND job_claims.lease_until < now())
                OR (job_claims.state = 'retrying' AND job_claims.next_attempt_at <= now())
            RETURNING attempts
            """
        ),
        {"stage": stage.key, "entity": entity_id, "worker": worker_id, "lease": lease_seconds},
    ).first()
    return Claim(stage, entity_id, worker_id, int(row[0])) if row else None


def extend(engine: Engine, claim: Claim, lease_seconds: int) -> bool:
    """Push the lease forward; False when the claim was lost (it expired and another worker took it)."""
    with engine.begin() as connection:
        result = connection.execute(
            text(
                "UPDATE job_claims SET lease_until = now() + make_interval(secs => :lease) "
                "WHERE stage = :stage AND entity_id = :entity AND worker_id = :worker AND state = 'running'"
            ),
            {
                "lease": lease_seconds,
                "stage": claim.stage.key,
                "entity": claim.entity_id,
                "worker": claim.worker_id,
            },
        )
    return bool(result.rowcount)


def _lost(claim: Claim) -> LeaseLost:
    return LeaseLost(f"{claim.stage.key} {claim.entity_id}: the lease of {claim.worker_id} was taken over")


def holds(session: Session, claim: Claim) -> bool:
    """Whether this worker still holds the running claim (another may have taken over an expired lease)."""
    row = session.execute(
        text(
            "SELECT 1 FROM job_claims WHERE stage = :stage AND entity_id = :entity AND worker_id = :worker "
            "AND state = 'running'"
        ),
        {"stage": claim.stage.key, "entity": claim.entity_id, "worker": claim.worker_id},
    ).first()
    return row is not None


def succeed(session: Session, claim: Claim, *, note: str | None = None) -> None:
    """Mark the work done, in the transaction that writes its results; LeaseLost rolls them back with it."""
    result = session.execute(
        text(
            "UPDATE job_claims SET state = 'succeeded', lease_until = NULL, last_error = :note "
            "WHERE stage = :stage AND entity_id = :entity AND worker_id = :worker AND state = 'running'"
        ),
        {"stage": claim.stage.key, "entity": claim.entity_id, "worker": claim.worker_id, "note": note},
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _lost(claim)


def fail(
    session: Session,
    claim: Claim,
    error: str,
    *,
    permanent: bool,
    max_attempts: int,
    backoff_base: float = BASE_BACKOFF_SECONDS,
) -> float | None:
    """Record a failure. Returns the delay before the next attempt, or None when the work has failed for good.

    LeaseLost when another worker holds the claim now: its attempt is not ours to judge.
    """
    final = permanent or exhausted(claim.attempts, max_attempts)
    delay = None if final else backoff_seconds(claim.attempts, base=backoff_base)
    result = session.execute(
        text(
            "UPDATE job_claims SET state = :state, last_error = :error, lease_until = NULL, "
            "next_attempt_at = now() + make_interval(secs => CAST(:delay AS double precision)) "
            "WHERE stage = :stage AND entity_id = :entity AND worker_id = :worker AND state = 'running'"
        ),
        {
            "state": "failed" if final else "retrying",
            "error": error,
            "delay": delay,
            "stage": claim.stage.key,
            "entity": claim.entity_id,
            "worker": claim.worker_id,
        },
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _lost(claim)
    return delay


def reset(session: Session, stage: Stage, entity_id: int) -> None:
    """A human asked for another go: attempts start again from zero."""
    session.execute(
        text(
            "UPDATE job_claims SET state = 'retrying', attempts = 0, next_attempt_at = now(), "
            "lease_until = NULL, worker_id = NULL WHERE stage = :stage AND entity_id = :entity"
        ),
        {"stage": stage.key, "entity": entity_id},
    )


def give_up_if_exhausted(session: Session, claim: Claim, max_attempts: int) -> bool:
    """A claim taken over from a crashed worker counts an attempt; past the cap the work fails."""
    if claim.attempts <= max_attempts:
        return False
    fail(session, claim, f"gave up after {max_attempts} attempts", permanent=True, max_attempts=max_attempts)
    return True


@contextmanager
def heartbeat(engine: Engine, claim: Claim, lease_seconds: int) -> Iterator[threading.Event]:
    """Extend the lease every third of its length while the work runs; the event is set if the claim is lost."""
    stop, lost = threading.Event(), threading.Event()

    def beat() -> None:
        while not stop.wait(lease_seconds / 3):
            if not extend(engine, claim, lease_seconds):
                lost.set()
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{claim.stage.key}-{claim.entity_id}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        stop.set()
        thread.join(timeout=5)


def is_failed(session: Session, stage: Stage, entity_id: int) -> bool:
    row = session.execute(
        text("SELECT state FROM job_claims WHERE stage = :stage AND entity_id = :entity"),
        {"stage": stage.key, "entity": entity_id},
    ).first()
    return row is not None and row[0] == "failed"


def last_error(session: Session, stage: Stage, entity_id: int) -> str | None:
    row = session.execute(
        text("SELECT last_error FROM job_claims WHERE stage = :stage AND entity_id = :entity AND state = 'failed'"),
        {"stage": stage.key, "entity": entity_id},
    ).first()
    return str(row[0]) if row and row[0] else None
