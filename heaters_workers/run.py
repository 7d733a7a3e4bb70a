"""Entry module for `dramatiq` and `periodiq`: sets the broker, then declares every actor."""

from __future__ import annotations

from heaters import logs
from heaters.settings import get_settings
from heaters_workers.broker import setup_broker

logs.configure(get_settings().log_format)  # Dramatiq has set up its handlers by the time it imports us
broker = setup_broker(get_settings().redis_url)

from heaters_workers import actors  # noqa: E402,F401  (declares every actor on the broker above)
