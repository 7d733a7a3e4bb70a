"""The schedule's own ticks (periodiq): the Dispatcher every minute, playback cleanup every few hours.

periodiq has no leader lock, so each tick claims its period in Postgres first: however many
schedulers run, one tick does the work.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import dramatiq
from periodiq import cron

from heaters.db import unit_of_work
from heaters.pipeline.dispatch import claim_tick, sweep
from heaters.playback import cleanup
from heaters.queues import Queue
from heaters.settings import ScheduleSettings, get_settings

log = logging.getLogger(__name__)
_schedule = ScheduleSettings()


@dramatiq.actor(
    actor_name="schedule.dispatch",
    queue_name=Queue.DEFAULT.value,
    max_retries=0,
    periodic=cron(_schedule.dispatcher_cron),
)
def dispatch_tick() -> None:
    with unit_of_work() as session:
        minute = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
        if not claim_tick(session, "dispatch"):
            log.info("schedule.dispatch skipped %s: another scheduler's tick already ran this minute", minute)
            return
        log.info("schedule.dispatch ran %s", minute)  # once a minute however many schedulers run
        sweep(session)


@dramatiq.actor(
    actor_name="schedule.playback_cleanup",
    queue_name=Queue.MAINTENANCE.value,
    max_retries=0,
    periodic=cron(_schedule.cleanup_cron),
)
def playback_cleanup_tick() -> None:
    with unit_of_work() as session:
        if not claim_tick(session, "playback_cleanup"):
            return
    cleanup.run(get_settings())  # logs one structured line per place it cleaned
