"""Enqueue work by name; messages leave only after the transaction that needs them commits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import dramatiq

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    actor_name: str
    queue_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    delay_ms: int | None = None


_pending: ContextVar[list[Job] | None] = ContextVar("heaters_pending_jobs", default=None)


@contextmanager
def buffer() -> Iterator[list[Job]]:
    """Collect jobs enqueued inside; the caller sends them once its transaction commits."""
    pending: list[Job] = []
    token = _pending.set(pending)
    try:
        yield pending
    finally:
        _pending.reset(token)


def enqueue(actor_name: str, queue_name: str, *args: Any, delay_ms: int | None = None, **kwargs: Any) -> None:
    """Queue a message (optionally delayed); outside a unit of work it is sent at once."""
    job = Job(actor_name, queue_name, args, kwargs, delay_ms)
    pending = _pending.get()
    if pending is None:
        send_all([job])
    elif job not in pending:
        pending.append(job)


def send_all(pending: list[Job]) -> None:
    if not pending:
        return
    broker = dramatiq.get_broker()
    for job in pending:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue_name, actor_name=job.actor_name, args=job.args, kwargs=job.kwargs, options={}
        )
        broker.enqueue(message, delay=job.delay_ms)
        log.info("job.sent %s %s", job.actor_name, job.args)
