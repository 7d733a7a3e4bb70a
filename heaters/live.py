"""Live updates (DESIGN point 7): each web process subscribes to Redis once and forwards each event only
to the tabs of this process that watch one of its topics. No client polls, and no page queries per event.

- A page's `on_load` calls `hub.watch(token, StateClass, topics)`; the next page load of that tab (or its
  websocket going away) ends it. Nothing expires while the tab stays open.
- A state class that receives events defines `apply_events(self, events) -> bool`: in-memory changes from
  what the events carry; True asks for one `live_reload` (a classmethod doing its queries in a thread).
  Events that arrive while a tab's delivery runs are coalesced into the next batch, so a burst of events
  becomes one state update (and at most one reload) per tab.
- A class may define `live_prepare(event) -> event` (a sync classmethod, run in a thread once per process
  and event): what a page needs that the event does not carry is read once, not once per tab.
- A class may define `live_heartbeat(tokens)` and `live_left(token)` (sync classmethods, run in a thread):
  the review page keeps its leases alive while its tabs are connected, and gives them back when one leaves.

With several web processes (`REFLEX_REDIS_URL`), every process hears every event, and each one serves only
the tabs whose websocket it holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis.asyncio as aioredis
import reflex as rx

from heaters.events import CHANNEL
from heaters.settings import get_settings

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 5.0
GONE_AFTER_ROUNDS = 2
BLOCKING_THREADS = 16  # a reload reconnects at once; a tab missing for two rounds has left
Key = tuple[str, type[rx.State]]


class Hub:
    """Which tabs of this process watch which topics, and the delivery of events to them."""

    def __init__(self) -> None:
        self._topics: dict[Key, frozenset[str]] = {}
        self._by_topic: dict[str, set[Key]] = {}
        self._pending: dict[Key, list[dict[str, Any]]] = {}
        self._delivering: dict[Key, asyncio.Task[None]] = {}
        self._missing: dict[str, int] = {}
        self._always: set[type[rx.State]] = set()
        self._pages: dict[str, set[type[rx.State]]] = {}
        # Set by the listener: a tab whose socket is not (or no longer) here gets nothing, so a closed tab
        # waiting out its grace rounds can never act (reload, take leases) on an event.
        self.connected: Callable[[str], bool] | None = None

    # --- pages -----------------------------------------------------------------------------------

    def keep_always(self, cls: type[rx.State]) -> None:
        """A state on every page (the nav's counts): loading another page does not end its watch."""
        self._always.add(cls)

    def page(self, route: str, cls: type[rx.State]) -> None:
        """`cls` watches while its tab shows `route`: loading any other page ends the watch."""
        self._pages.setdefault(route.rstrip("/") or "/", set()).add(cls)

    async def enter_page(self, token: str, path: str) -> None:
        """A tab loaded `path`: the states of the other pages it showed stop watching (and let go)."""
        keep = self._always | self._pages.get(path.rstrip("/") or "/", set())
        await self.leave(token, keep=keep)

    # --- subscriptions -------------------------------------------------------------------------

    def watch(self, token: str, cls: type[rx.State], topics: Iterable[str]) -> None:
        """Replace what this tab's state `cls` hears."""
        key = (token, cls)
        self._drop(key)
        wanted = frozenset(topics)
        self._topics[key] = wanted
        for topic in wanted:
            self._by_topic.setdefault(topic, set()).add(key)

    def unwatch(self, token: str, *, keep: Iterable[type[rx.State]] = ()) -> list[type[rx.State]]:
        """Forget this tab (it loaded another page, or left); returns the classes that stopped watching."""
        kept = set(keep)
        left = [cls for (t, cls) in list(self._topics) if t == token and cls not in kept]
        for cls in left:
            self._drop((token, cls))
        return left

    def _drop(self, key: Key) -> None:
        for topic in self._topics.pop(key, frozenset()):
            keys = self._by_topic.get(topic)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_topic[topic]

    def topics(self, token: str, cls: type[rx.State]) -> frozenset[str]:
        return self._topics.get((token, cls), frozenset())

    def tokens(self, cls: type[rx.State] | None = None) -> list[str]:
        return sorted({t for (t, c) in self._topics if cls is None or c is cls})

    def receivers(self, topics: Iterable[str]) -> set[Key]:
        found: set[Key] = set()
        for topic in topics:
            found |= self._by_topic.get(topic, set())
        return found

    # --- delivery --------------------------------------------------------------------------------

    async def dispatch(self, app: rx.App, event: dict[str, Any]) -> None:
        """Hand one event to every tab watching one of its topics (prepared once per state class)."""
        receivers = self.receivers(event.get("topics") or ())
        by_class: dict[type[rx.State], list[str]] = {}
        for token, cls in receivers:
            if self.connected is None or self.connected(token):
                by_class.setdefault(cls, []).append(token)
        for cls, tokens in by_class.items():
            prepared: dict[str, Any] | None = event
            prepare = getattr(cls, "live_prepare", None)
            if prepare is not None:
                try:
                    prepared = await asyncio.to_thread(prepare, event)
                except Exception as error:  # an enrichment failure must not stop the listener
                    log.warning("live.prepare_failed %s %s: %s", cls.__name__, event.get("type"), error)
                    continue
            if prepared is None:
                continue
            for token in tokens:
                self._pending.setdefault((token, cls), []).append(prepared)
                if (token, cls) not in self._delivering:
                    self._delivering[(token, cls)] = asyncio.create_task(self._deliver(app, (token, cls)))

    async def _deliver(self, app: rx.App, key: Key) -> None:
        token, cls = key
        try:
            while batch := self._pending.pop(key, []):
                if key not in self._topics:  # the tab stopped watching meanwhile
                    return
                try:
                    async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
                        state = await root.get_state(cls)
                        reload = state.apply_events(batch)  # type: ignore[attr-defined]
                    if reload:
                        await cls.live_reload(app, token)  # type: ignore[attr-defined]
                except Exception as error:  # one broken tab must not stop the others' updates
                    log.warning("live.push_failed %s %s: %s", cls.__name__, token, error)
        finally:
            self._delivering.pop(key, None)

    async def idle(self) -> None:
        """Wait until every delivery has finished (tests, benchmarks)."""
        while self._delivering:
            await asyncio.gather(*list(self._delivering.values()), return_exceptions=True)

    # --- housekeeping ----------------------------------------------------------------------------

    async def housekeeping(
        self,
        connected: Callable[[str], bool],
        elsewhere: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """Forget tabs whose websocket has gone (closed, crashed), and keep the live ones' heartbeats.

        A tab missing here for two rounds in a row has left, unless `elsewhere` says its socket is now
        held by another web process (a reconnect may land on any of them): then only this process
        forgets it, and what it holds stays with the process that serves it now.
        """
        watching = set(self.tokens())
        for token in list(self._missing):
            if token not in watching:  # a count only means something for consecutive rounds of a watcher
                del self._missing[token]
        for token in watching:
            if connected(token):
                self._missing.pop(token, None)
                continue
            self._missing[token] = self._missing.get(token, 0) + 1
            if self._missing[token] < GONE_AFTER_ROUNDS:
                continue
            self._missing.pop(token, None)
            if elsewhere is not None and await elsewhere(token):
                self.unwatch(token)
            else:
                await self.leave(token)
        classes = {cls for (_, cls) in self._topics}
        for cls in classes:
            beat = getattr(cls, "live_heartbeat", None)
            if beat is None:
                continue
            tokens = [t for t in self.tokens(cls) if t not in self._missing]
            if tokens:
                try:
                    await asyncio.to_thread(beat, tokens)
                except Exception as error:
                    log.warning("live.heartbeat_failed %s: %s", cls.__name__, error)

    async def leave(self, token: str, *, keep: Iterable[type[rx.State]] = ()) -> None:
        """The tab left these pages: each state that cares gives back what it held (leases)."""
        for cls in self.unwatch(token, keep=keep):
            left = getattr(cls, "live_left", None)
            if left is None:
                continue
            try:
                await asyncio.to_thread(left, token)
            except Exception as error:
                log.warning("live.left_failed %s %s: %s", cls.__name__, token, error)


hub = Hub()


def connected_anywhere(app: rx.App) -> Callable[[str], Awaitable[bool]]:
    """Whether a tab's websocket is held by any web process (Reflex keeps socket records in Redis)."""

    async def connected(token: str) -> bool:
        namespace = app.event_namespace
        return namespace is not None and await namespace._token_manager.is_token_connected(token)

    return connected


def connected_here(app: rx.App) -> Callable[[str], bool]:
    """Whether a tab's websocket is held by this process (Reflex keeps that in its token manager)."""

    def connected(token: str) -> bool:
        namespace = app.event_namespace
        if namespace is None:
            return False
        manager = namespace._token_manager
        record = manager.token_to_socket.get(token)
        return record is not None and record.instance_id == manager.instance_id

    return connected


async def _housekeeping_loop(app: rx.App) -> None:
    here, anywhere = connected_here(app), connected_anywhere(app)
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            await hub.housekeeping(here, anywhere)
        except Exception as error:
            log.warning("live.housekeeping_failed %s", error)


async def _dispatch_one(app: rx.App, data: bytes | str) -> None:
    """One message; a message we cannot read is logged and skipped, never a reason to drop the subscription."""
    try:
        event = json.loads(data)
        if not isinstance(event, dict):
            raise ValueError("an event must be a JSON object")
        topics = event.get("topics") or []
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise ValueError("topics must be a list of strings")
    except ValueError as error:
        log.warning("live.bad_event %s: %r", error, data[:200])
        return
    await hub.dispatch(app, event)


def listener() -> Callable[[rx.App], Awaitable[None]]:
    """A lifespan task: subscribe once, forward every event, reconnect after Redis outages."""

    async def listen(app: rx.App) -> None:
        # Handlers and the hub run their blocking work with asyncio.to_thread: give it enough threads
        # for a room of reviewers (the default is cores + 4), matched by the engine's connection pool.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(BLOCKING_THREADS, "heaters-io"))
        hub.connected = connected_here(app)
        keeper = asyncio.create_task(_housekeeping_loop(app))
        delay = 1.0
        try:
            while True:
                # A health check and keepalive, so a link that dies silently is noticed and reopened.
                client = aioredis.Redis.from_url(
                    get_settings().redis_url, health_check_interval=30, socket_keepalive=True
                )
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(CHANNEL)
                        delay = 1.0
                        async for message in pubsub.listen():
                            if message.get("type") == "message":
                                await _dispatch_one(app, message["data"])
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning("live.listener_lost %s; reconnecting in %.0f s", error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                finally:
                    await client.aclose()
        finally:
            keeper.cancel()

    return listen
