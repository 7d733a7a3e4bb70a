"""Pausing a queue: its workers finish what they run and take nothing new until it is resumed.

The paused set lives in Redis (`heaters:paused_queues`), next to the queues themselves, so it survives a
restart of any worker; each worker process checks it every second (`heaters_workers.broker.PauseGate`).
"""

from __future__ import annotations

from typing import Any

from heaters.queues import Queue

PAUSED_KEY = "heaters:paused_queues"
POLL_SECONDS = 1.0


def pause(redis: Any, queue: Queue) -> bool:
    """True when it was running until now."""
    return bool(redis.sadd(PAUSED_KEY, queue.value))


def resume(redis: Any, queue: Queue) -> bool:
    """True when it was paused until now."""
    return bool(redis.srem(PAUSED_KEY, queue.value))


def paused(redis: Any) -> set[str]:
    return {m.decode() if isinstance(m, bytes) else str(m) for m in redis.smembers(PAUSED_KEY)}
