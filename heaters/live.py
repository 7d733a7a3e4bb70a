"""Live updates (DESIGN point 7): one Redis subscription per web process pushes events into the states
of the browsers watching, through `app.modify_state`. No client polls the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import reflex as rx

from heaters.events import CHANNEL
from heaters.settings import get_settings

log = logging.getLogger(__name__)
WATCH_TTL_SECONDS = 3600.0

# Browsers (client tokens) with a live page open in this process, and when they last loaded it.
_watchers: dict[str, float] = {}


def watch(client_token: str) -> None:
    _watchers[client_token] = time.monotonic()


def watchers() -> list[str]:
    now = time.monotonic()
    for token, seen in list(_watchers.items()):
        if now - seen > WATCH_TTL_SECONDS:
            _watchers.pop(token, None)
    return list(_watchers)


async def push(app: rx.App, state_cls: type[rx.State], event: dict[str, Any]) -> None:
    for token in watchers():
        try:
            async with app.modify_state(rx.BaseStateToken(ident=token, cls=state_cls)) as root:
                state = await root.get_state(state_cls)
                state.apply_event(event)  # type: ignore[attr-defined]
        except Exception as error:  # one broken client must not stop the others' updates
            log.warning("live.push_failed %s: %s", token, error)
            _watchers.pop(token, None)


def listener(state_cls: type[rx.State]) -> Callable[[rx.App], Awaitable[None]]:
    """A lifespan task: subscribe once, forward every event, reconnect after Redis outages."""

    async def listen(app: rx.App) -> None:
        delay = 1.0
        while True:
            client = aioredis.Redis.from_url(get_settings().redis_url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    delay = 1.0
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        await push(app, state_cls, json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("live.listener_lost %s; reconnecting in %.0f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                await client.aclose()

    return listen
