"""Engines per process (built lazily: Reflex and Dramatiq fork after import) and the unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine
from sqlmodel import Session, create_engine

from heaters import events, jobs
from heaters.settings import get_settings


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    # Up to 16 connections: as many as the web process's threads for blocking work (heaters.live).
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=11, connect_args={"connect_timeout": 5})


def get_engine() -> Engine:
    return engine_for(get_settings().sqlalchemy_url)


@contextmanager
def unit_of_work(engine: Engine | None = None) -> Iterator[Session]:
    """Yield a session; commit, then send the jobs and events queued inside; on error roll back and drop them.

    Services never commit: the caller's unit of work does, so a message can never name a row that a
    rollback took back. A send lost after the commit is healed by the Dispatcher.
    """
    with (
        jobs.buffer() as pending,
        events.buffer() as pending_events,
        Session(engine or get_engine(), expire_on_commit=False) as session,
    ):
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            pending.clear()
            pending_events.clear()
            raise
    jobs.send_all(pending)
    events.send_all(pending_events)
