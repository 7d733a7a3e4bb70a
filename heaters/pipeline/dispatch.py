"""Getting work to workers: direct chaining and the Dispatcher's sweep share `schedule()`."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlmodel import Session

from heaters import jobs
from heaters.pipeline import claims
from heaters.pipeline.stages import Stage
from heaters.playback import service as playback_service
from heaters.review import leases

log = logging.getLogger(__name__)

# What each stage's work looks like in the database (the reference's dispatcher stages, fixed).
CANDIDATES: dict[Stage, str] = {
    Stage.DOWNLOAD: "ingest_state IN ('new', 'downloading') AND original_url IS NOT NULL AND filepath IS NULL",
    Stage.ENCODE: "ingest_state IN ('downloaded', 'encoding') AND filepath IS NOT NULL AND proxy_filepath IS NULL",
    Stage.DETECT_SCENES: "ingest_state IN ('encoded', 'detecting_scenes') AND needs_splicing "
    "AND proxy_filepath IS NOT NULL",
    Stage.MASTER: "master_filepath IS NULL AND proxy_filepath IS NOT NULL AND filepath IS NOT NULL",
}


def schedule(session: Session, stage: Stage, entity_id: int, *, delay_ms: int | None = None) -> bool:
    """Queue a stage for an entity unless it is already queued, running, waiting to retry or failed.

    The message leaves after the caller's transaction commits (heaters.jobs).
    """
    if not claims.mark_queued(session, stage, entity_id):
        return False
    jobs.enqueue(stage.actor_name, stage.queue.value, entity_id, delay_ms=delay_ms)
    return True


def sweep(session: Session, *, master_enabled: bool = True) -> dict[str, int]:
    """Find work from database state and queue it; a lost message or a crashed worker heals here."""
    sent: dict[str, int] = {}
    for stage, predicate in CANDIDATES.items():
        if stage is Stage.MASTER and not master_enabled:
            continue
        ids = session.execute(text(f"SELECT id FROM source_videos WHERE {predicate} ORDER BY id")).scalars().all()
        sent[stage.key] = sum(schedule(session, stage, int(i)) for i in ids)
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
