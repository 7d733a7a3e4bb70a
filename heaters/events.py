"""Domain events on Redis pub/sub: the web process listens once and pushes to the browsers concerned.

Publishing is best effort: an event is a hint to refresh, never the truth (the database is).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.exceptions import RedisError

from heaters.adapters import get_redis

CHANNEL = "heaters:events"
log = logging.getLogger(__name__)


def publish(kind: str, **data: Any) -> None:
    try:
        get_redis().publish(CHANNEL, json.dumps({"type": kind, **data}, default=str))
    except RedisError as error:
        log.warning("events.publish_failed %s: %s", kind, error)
