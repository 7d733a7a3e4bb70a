"""What the media route does before Starlette's FileResponse streams the bytes (ranges included).

Blocking work (a stat, a query, an S3 pull) runs here, in a thread, never on the event loop.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from heaters.adapters import get_playback_cache, get_storage
from heaters.db import unit_of_work
from heaters.playback import names, service
from heaters.storage.s3 import StorageError

log = logging.getLogger(__name__)
SERVED_RECORD_INTERVAL = 5.0  # seconds: a playing clip makes many range requests; record once in a while

_recorded: dict[str, float] = {}


def resolve(filename: str) -> Path | None:
    """The local file for a valid temp clip name, pulled from S3 first if this host lacks it; else None."""
    if names.parse(filename) is None:
        return None
    path = get_playback_cache().path(filename)
    if not path.is_file():
        pulled = _pull(filename)
        if pulled is None:
            return None
        path = pulled
    _record_served(filename)
    return path


def _pull(filename: str) -> Path | None:
    with unit_of_work() as session:
        found = service.find_ready(session, filename)
    if found is None or not found.s3_key:
        return None
    try:
        return get_playback_cache().fetch(get_storage(), filename, found.s3_key)
    except StorageError as error:
        log.warning("playback.pull_failed %s: %s", filename, error)
        return None


def _record_served(filename: str) -> None:
    now = time.monotonic()
    if now - _recorded.get(filename, -SERVED_RECORD_INTERVAL) < SERVED_RECORD_INTERVAL:
        return
    _recorded[filename] = now
    if len(_recorded) > 10_000:  # forget old names; the database keeps the real record
        _recorded.clear()
    with unit_of_work() as session:
        service.mark_served(session, filename, min_interval_seconds=int(SERVED_RECORD_INTERVAL))
