"""Entry module for `dramatiq` and `periodiq`: sets the broker, then declares every actor."""

from __future__ import annotations

from heaters.settings import get_settings
from heaters_workers.broker import setup_broker

broker = setup_broker(get_settings().redis_url)

from heaters_workers import actors  # noqa: E402,F401  (declares every actor on the broker above)
