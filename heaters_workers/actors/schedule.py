"""The schedule's own ticks (periodiq): the Dispatcher every minute, playback cleanup every few hours."""

from __future__ import annotations

import logging

import dramatiq
from periodiq import cron

from heaters.settings import get_settings
from heaters_workers.queues import Queue

log = logging.getLogger(__name__)
_settings = get_settings()


@dramatiq.actor(
    actor_name="schedule.dispatch", queue_name=Queue.DEFAULT.value, periodic=cron(_settings.dispatcher_cron)
)
def dispatch_tick() -> None:
    log.info("schedule.dispatch tick")


@dramatiq.actor(
    actor_name="schedule.playback_cleanup",
    queue_name=Queue.DEFAULT.value,
    periodic=cron(_settings.cleanup_cron),
)
def playback_cleanup_tick() -> None:
    log.info("schedule.playback_cleanup tick")
