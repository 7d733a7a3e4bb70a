"""heaters.live.listener end to end, and heaters.events on the real channel.

The listener runs as the web process runs it: on the real test Redis (`app_env`), dispatching into the
module-wide `heaters.live.hub`, delivering through a real Reflex app's state manager. Tabs are linked in
Reflex's token manager as if their websocket were open, so the listener's housekeeping keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
import reflex as rx
from sqlalchemy import Engine, text
from sqlalchemy import event as sa_event

from heaters import events, live
from heaters.db import unit_of_work
from heaters.events import CHANNEL


class Probe:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []  # every event any tab applied, in order
        self.left: list[str] = []
        self.beats: list[list[str]] = []
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    def kinds(self) -> list[str]:
        return [event["type"] for event in self.applied]

    async def until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


PROBE = Probe()


@pytest.fixture(autouse=True)
def probe() -> Iterator[Probe]:
    """A fresh probe, and the module-wide hub left as the test found it."""
    global PROBE
    PROBE = Probe()
    before = set(live.hub.tokens())
    yield PROBE
    for token in set(live.hub.tokens()) - before:
        live.hub.unwatch(token)


class ListenBase(rx.State, mixin=True):
    got: list[list[str]] = []

    def apply_events(self, events: list[dict[str, Any]]) -> bool:
        self.got = [*self.got, [event["type"] for event in events]]
        PROBE.applied.extend(events)
        PROBE.changed()
        return False


class ListenTab(ListenBase, rx.State):
    pass


class ListenLeases(ListenBase, rx.State):
    @classmethod
    def live_left(cls, token: str) -> None:
        PROBE.left.append(token)

    @classmethod
    def live_heartbeat(cls, tokens: list[str]) -> None:
        PROBE.beats.append(list(tokens))


def tabs(n: int) -> list[str]:
    return [f"tab-{i}-{uuid.uuid4().hex[:8]}" for i in range(n)]


async def open_tab(app: rx.App, token: str, cls: type[ListenBase], topics: list[str]) -> None:
    """A tab of this process: its websocket is held here, and its page watches `topics`."""
    await app.event_namespace._token_manager.link_token_to_sid(token, f"sid-{token}")  # type: ignore[union-attr]
    live.hub.watch(token, cls, topics)


async def got(app: rx.App, token: str, cls: type[ListenBase]) -> list[list[str]]:
    async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
        state = await root.get_state(cls)
        return [list(batch) for batch in state.got]


def flat(batches: list[list[str]]) -> list[str]:
    return [kind for batch in batches for kind in batch]


async def pubsub_clients(admin: aioredis.Redis) -> set[str]:
    return {client["id"] for client in await admin.client_list() if int(client.get("sub", 0)) > 0}


async def subscribed(task: asyncio.Task[None], admin: aioredis.Redis, known: set[str], topic: str) -> str:
    """Wait until the listener holds a subscription on a connection not in `known`, and an event
    published now reaches the probe tab watching `topic`; return that connection's id."""
    async with asyncio.timeout(60):
        while not (new := await pubsub_clients(admin) - known):
            if task.done():
                task.result()  # the listener died: show why
                pytest.fail("the listener returned")
            await asyncio.sleep(0.01)
    assert len(new) == 1, new
    kind = f"probe-{uuid.uuid4().hex[:8]}"
    events.publish(kind, topics=[topic])
    await PROBE.until(lambda: kind in PROBE.kinds())
    return new.pop()


@contextlib.asynccontextmanager
async def listening(app: rx.App, admin: aioredis.Redis) -> AsyncIterator[tuple[asyncio.Task[None], str, str]]:
    """The listener running on `app`, subscribed; yields its task, its probe topic and its connection id."""
    (probe_tab,) = tabs(1)
    probe_topic = f"probe:{probe_tab}"
    await open_tab(app, probe_tab, ListenTab, [probe_topic])
    before = await pubsub_clients(admin)
    task = asyncio.create_task(live.listener()(app))
    try:
        yield task, probe_topic, await subscribed(task, admin, before, probe_topic)
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=10)  # (never swallow a cancellation of this test)


async def admin_client(app_env: dict[str, str]) -> aioredis.Redis:
    return aioredis.Redis.from_url(app_env["REDIS_URL"], decode_responses=True)


def test_published_events_reach_the_tabs_watching_them(app_env: dict[str, str], reflex_app: rx.App, run: Any) -> None:
    async def scenario() -> None:
        admin = await admin_client(app_env)
        lister, page, counts = tabs(3)
        await open_tab(reflex_app, lister, ListenTab, [events.VIDEOS])
        await open_tab(reflex_app, page, ListenTab, [events.video_topic(5)])
        await open_tab(reflex_app, counts, ListenTab, [events.COUNTS])
        async with listening(reflex_app, admin):
            events.publish("video.changed", topics=events.video_topics(5), video={"id": 5, "state": "ready"})
            events.send_all(
                [
                    {"type": "listed", "topics": [events.VIDEOS]},
                    {"type": "paged", "topics": [events.video_topic(5), events.clip_topic(1)]},
                    {"type": "nobody", "topics": [events.video_topic(6)]},
                    {"type": "counted", "topics": [events.COUNTS]},
                ]
            )
            # The listener forwards in order, so the last event's arrival means every earlier one was
            # dispatched too.
            await PROBE.until(lambda: "counted" in PROBE.kinds())
            await live.hub.idle()
            assert flat(await got(reflex_app, lister, ListenTab)) == ["video.changed", "listed"]
            assert flat(await got(reflex_app, page, ListenTab)) == ["video.changed", "paged"]
            assert await got(reflex_app, counts, ListenTab) == [["counted"]]
            changed = [e for e in PROBE.applied if e["type"] == "video.changed"]
            assert changed == 2 * [
                {"type": "video.changed", "topics": ["videos", "video:5"], "video": {"id": 5, "state": "ready"}}
            ]
            assert "nobody" not in PROBE.kinds()
        await admin.aclose()

    run(scenario())


def test_the_listener_reconnects_when_redis_drops_its_connection(
    app_env: dict[str, str], reflex_app: rx.App, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        admin = await admin_client(app_env)
        (tab,) = tabs(1)
        await open_tab(reflex_app, tab, ListenTab, [events.VIDEOS])
        with caplog.at_level(logging.WARNING, logger="heaters.live"):
            async with listening(reflex_app, admin) as (task, probe_topic, connection):
                events.publish("before", topics=[events.VIDEOS])
                await PROBE.until(lambda: "before" in PROBE.kinds())

                known = await pubsub_clients(admin)
                assert await admin.client_kill_filter(_id=connection) == 1
                again = await subscribed(task, admin, known, probe_topic)  # subscribed on a new connection
                assert again != connection
                assert connection not in await pubsub_clients(admin)

                events.publish("after", topics=[events.VIDEOS])
                await PROBE.until(lambda: "after" in PROBE.kinds())
                await live.hub.idle()
                assert await got(reflex_app, tab, ListenTab) == [["before"], ["after"]]
                assert not task.done()
        assert any("live.listener_lost" in r.getMessage() for r in caplog.records)
        await admin.aclose()

    run(scenario())


def test_a_malformed_message_does_not_cost_the_events_after_it(
    app_env: dict[str, str], reflex_app: rx.App, run: Any
) -> None:
    """Anything can be published on the channel: a payload the listener cannot read is one lost message,
    not a lost subscription. (Today it is handled like a Redis outage: the listener closes its connection
    and resubscribes a second later, and every event published meanwhile is lost for every tab.)"""

    async def scenario() -> None:
        admin = await admin_client(app_env)
        (tab,) = tabs(1)
        await open_tab(reflex_app, tab, ListenTab, [events.VIDEOS])
        async with listening(reflex_app, admin) as (_task, _probe_topic, connection):
            await admin.publish(CHANNEL, "not json")
            events.publish("next", topics=[events.VIDEOS])
            async with asyncio.timeout(60):  # until the event arrives or the listener drops its connection
                while "next" not in PROBE.kinds() and connection in await pubsub_clients(admin):
                    with contextlib.suppress(TimeoutError):
                        await PROBE.until(lambda: "next" in PROBE.kinds(), timeout=0.05)
            assert "next" in PROBE.kinds(), "the listener dropped its subscription and lost the next event"
            assert connection in await pubsub_clients(admin)
        await admin.aclose()

    run(scenario())


def test_reflex_runs_the_listener_as_a_lifespan_task(app_env: dict[str, str], reflex_app: rx.App, run: Any) -> None:
    """As heaters/heaters.py registers it: Reflex hands the App to the task (its parameter is `app`)."""

    async def scenario() -> None:
        admin = await admin_client(app_env)
        (tab,) = tabs(1)
        topic = f"probe:{tab}"
        reflex_app.register_lifespan_task(live.listener())
        before = await pubsub_clients(admin)
        async with reflex_app._run_lifespan_tasks(reflex_app._api):  # what Starlette's lifespan enters
            # Tabs connect once the server runs (a worker's start gives its token manager a new identity).
            await open_tab(reflex_app, tab, ListenTab, [topic])
            (task,) = [t for t in asyncio.all_tasks() if t.get_name().startswith("reflex_lifespan_task|listen|")]
            await subscribed(task, admin, before, topic)
        assert task.done()
        async with asyncio.timeout(60):  # its connection closed with it
            while await pubsub_clients(admin) - before:
                await asyncio.sleep(0.02)
        await admin.aclose()

    run(scenario())


def test_the_listener_keeps_house(
    app_env: dict[str, str], reflex_app: rx.App, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its housekeeping forgets the tabs whose websocket has gone and beats for the others."""
    monkeypatch.setattr(live, "HOUSEKEEPING_SECONDS", 0.02)

    async def scenario() -> None:
        admin = await admin_client(app_env)
        open_, closed = tabs(2)
        await open_tab(reflex_app, open_, ListenLeases, [events.COUNTS])
        live.hub.watch(closed, ListenLeases, [events.COUNTS])  # no websocket here
        async with listening(reflex_app, admin):
            async with asyncio.timeout(60):
                while closed in live.hub.tokens() or not PROBE.beats:
                    await asyncio.sleep(0.02)
            assert PROBE.left == [closed]
            assert open_ in live.hub.tokens()
            assert all(open_ in beat and closed not in beat for beat in PROBE.beats)
            keepers = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "_housekeeping_loop"]
            assert len(keepers) == 1
        _, running = await asyncio.wait(keepers, timeout=10)
        assert not running and keepers[0].cancelled()  # it stopped with the listener
        await admin.aclose()

    run(scenario())


# --- heaters.events on a real subscription -------------------------------------------------------


class Heard:
    """A real subscriber to the channel, in a thread; `on_event` runs in it as each event arrives."""

    def __init__(self, url: str, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self._on_event = on_event
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._client = redis.Redis.from_url(url)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(CHANNEL)
        confirmed = self._pubsub.get_message(timeout=10)  # the server has the subscription
        assert confirmed is not None and confirmed["type"] == "subscribe", confirmed
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message and message["type"] == "message":
                event = json.loads(message["data"])
                if self._on_event is not None:
                    self._on_event(event)
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()

    def kinds(self) -> list[str]:
        with self._cond:
            return [event["type"] for event in self.events]

    def wait_for(self, kind: str, timeout: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: any(e["type"] == kind for e in self.events), timeout):
                pytest.fail(f"{kind!r} never arrived; heard {self.kinds()}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self._client.close()


@contextlib.contextmanager
def heard(url: str, on_event: Callable[[dict[str, Any]], None] | None = None) -> Iterator[Heard]:
    channel = Heard(url, on_event)
    try:
        yield channel
    finally:
        channel.close()


def _user_exists(engine: Engine, username: str) -> bool:
    with engine.connect() as connection:
        found = connection.execute(text("SELECT count(*) FROM users WHERE username = :u"), {"u": username})
        return found.scalar_one() == 1


def _add_user(session: Any, username: str) -> None:
    session.connection().execute(
        text("INSERT INTO users (username, password_hash) VALUES (:u, 'not-a-hash')"), {"u": username}
    )


def test_an_event_of_a_unit_of_work_is_sent_after_its_commit(app_env: dict[str, str], engine: Engine) -> None:
    username = f"live_{uuid.uuid4().hex[:8]}"
    row_when_heard: dict[str, bool] = {}

    def on_event(event: dict[str, Any]) -> None:  # what a page would read on hearing it
        row_when_heard[event["type"]] = _user_exists(engine, username)

    with heard(app_env["REDIS_URL"], on_event) as channel:
        heard_at_commit: list[str] = []

        def before_commit(_session: Any) -> None:  # the last moment before the commit
            events.send_all([{"type": "committing", "topics": []}])
            channel.wait_for("committing")
            heard_at_commit.extend(channel.kinds())

        with unit_of_work() as session:
            sa_event.listen(session, "before_commit", before_commit)
            _add_user(session, username)
            events.publish("user.added", topics=[events.COUNTS, events.COUNTS], username=username)
            events.send_all([{"type": "marker", "topics": []}])  # sent now, past the buffer
            channel.wait_for("marker")
            # Events reach a subscriber in the order they were published: user.added was not sent.
            assert channel.kinds() == ["marker"]
        assert heard_at_commit == ["marker", "committing"]
        channel.wait_for("user.added")
        assert channel.kinds() == ["marker", "committing", "user.added"]
        assert channel.events[2] == {"type": "user.added", "topics": ["counts"], "username": username}
        assert row_when_heard == {"marker": False, "committing": False, "user.added": True}

        events.publish("outside", topics=[events.VIDEOS])  # no unit of work: sent at once
        channel.wait_for("outside")


def test_an_event_of_a_rolled_back_unit_of_work_is_dropped(app_env: dict[str, str], engine: Engine) -> None:
    username = f"live_{uuid.uuid4().hex[:8]}"
    with heard(app_env["REDIS_URL"]) as channel:
        with pytest.raises(RuntimeError, match="changed my mind"), unit_of_work() as session:
            _add_user(session, username)
            events.publish("user.added", topics=[events.COUNTS], username=username)
            raise RuntimeError("changed my mind")
        events.publish("after", topics=[events.COUNTS])
        channel.wait_for("after")
        assert channel.kinds() == ["after"]
        assert not _user_exists(engine, username)
