"""Getting work to workers: direct chaining and the Dispatcher's sweep share `schedule()`."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlmodel import Session

from heaters import jobs
from heaters.clips.variants import generation_strategy
from heaters.pipeline import claims
from heaters.pipeline.stages import Stage
from heaters.playback import service as playback_service
from heaters.review import leases
from heaters.settings import Settings, get_settings

log = logging.getLogger(__name__)


def schedule(session: Session, stage: Stage, entity_id: int, *, delay_ms: int | None = None) -> bool:
    """Queue a stage for an entity unless it is already queued, running, waiting to retry or failed.

    The message leaves after the caller's transaction commits (heaters.jobs).
    """
    if not claims.mark_queued(session, stage, entity_id):
        return False
    jobs.enqueue(stage.actor_name, stage.queue.value, entity_id, delay_ms=delay_ms)
    return True


def pending_ids(session: Session, stage: Stage, settings: Settings) -> list[int]:
    """The entities the stage still has work for, by its own declaration (`Stage.needs_work`)."""
    params = {
        "embedding_model": settings.embedding_model,
        "generation_strategy": generation_strategy(settings).value,
        "export_grace": settings.export_grace_seconds,
    }
    query = text(f"SELECT id FROM {stage.entity.table} WHERE {stage.needs_work} ORDER BY id")
    return [int(i) for i in session.execute(query, params).scalars().all()]


def sweep(session: Session, settings: Settings | None = None) -> dict[str, int]:
    """Find work from database state and queue it; a lost message or a crashed worker heals here."""
    settings = settings or get_settings()
    sent: dict[str, int] = {}
    for stage in Stage:
        if stage is Stage.MASTER and not settings.master_enabled:
            continue
        sent[stage.key] = sum(schedule(session, stage, i) for i in pending_ids(session, stage, settings))
    # The playback cache and review leases heal here too: stalled generations go out again.
    sent[playback_service.ACTOR] = playback_service.resend_stalled(session)
    leases.purge_expired(session)
    if any(sent.values()):
        log.info("dispatcher.sent %s", sent)
    return sent


def claim_tick(session: Session, name: str, period_seconds: int = 60) -> bool:
    """One tick per period however many schedulers fire it (periodiq has no leader lock).

    The claim lasts until the end of the current period (aligned to the clock, like cron), so a tick at
    startup never swallows the next regular one.
    """
    row = session.execute(
        text(
            """
            INSERT INTO job_claims (stage, entity_id, state, lease_until)
            VALUES (:name, 0, 'succeeded',
                    to_timestamp((floor(extract(epoch FROM now()) / :period) + 1) * :period))
            ON CONFLICT (stage, entity_id) DO UPDATE
               SET lease_until = EXCLUDED.lease_until, attempts = job_claims.attempts + 1
             WHERE job_claims.lease_until <= now()
            RETURNING id
            """
        ),
        {"name": f"tick:{name}", "period": period_seconds},
    ).first()
    return row is not None
