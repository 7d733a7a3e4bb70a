"""Domain events on Redis pub/sub: the web process listens once and pushes to the pages concerned.

Every event names its topics (`counts`, `videos`, `video:<id>`, `clip:<id>`); a web process forwards it
only to the tabs watching one of them (heaters.live). Publishing is best effort: an event is a hint, and
the database is the truth. Inside a unit of work, events wait for the commit (like messages), so a page
never hears of a change that was rolled back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from redis.exceptions import RedisError

from heaters.adapters import get_redis

CHANNEL = "heaters:events"
COUNTS = "counts"
VIDEOS = "videos"
log = logging.getLogger(__name__)

_pending: ContextVar[list[dict[str, Any]] | None] = ContextVar("heaters_pending_events", default=None)


def video_topic(video_id: int) -> str:
    return f"video:{video_id}"


def clip_topic(clip_id: int) -> str:
    return f"clip:{clip_id}"


def video_topics(video_id: int) -> list[str]:
    """A video's own page parts and the videos list."""
    return [VIDEOS, video_topic(video_id)]


def publish(kind: str, *, topics: Sequence[str], **data: Any) -> None:
    """Publish now, or after the surrounding unit of work commits."""
    event = {"type": kind, "topics": list(dict.fromkeys(topics)), **data}
    pending = _pending.get()
    if pending is not None:
        pending.append(event)
        return
    send_all([event])


def send_all(pending: list[dict[str, Any]]) -> None:
    for event in pending:
        try:
            get_redis().publish(CHANNEL, json.dumps(event, default=str))
        except RedisError as error:
            log.warning("events.publish_failed %s: %s", event["type"], error)


@contextmanager
def buffer() -> Iterator[list[dict[str, Any]]]:
    """Collect events published inside; the caller sends them once its transaction commits."""
    pending: list[dict[str, Any]] = []
    token = _pending.set(pending)
    try:
        yield pending
    finally:
        _pending.reset(token)


CLIPS = "clips"


def clip_topics(clip_id: int, video_id: int | None = None) -> list[str]:
    """A clip's own page parts, the clips list, and its video's parts (its counts move)."""
    return [CLIPS, clip_topic(clip_id), *(video_topics(video_id) if video_id is not None else [])]
