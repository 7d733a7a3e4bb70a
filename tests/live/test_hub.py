"""heaters.live.Hub on a real Reflex app: routing by topic, pages, live_prepare, coalescing, failures,
housekeeping. Each test has its own Hub and its own App (tests/live/conftest.py), so nothing leaks."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import reflex as rx
from reflex.utils.token_manager import SocketRecord

from heaters.live import GONE_AFTER_ROUNDS, Hub, connected_here


class Probe:
    """What the state classes' hooks saw, and gates a test holds a delivery on."""

    def __init__(self) -> None:
        self.reloads: list[tuple[str, str]] = []  # (class, token), in call order
        self.gates: dict[str, asyncio.Event] = {}  # token -> its next live_reload waits on this
        self.waiting: set[str] = set()  # tokens whose live_reload is waiting on a gate now
        self.prepared: list[str] = []  # event types live_prepare was called with
        self.left: list[tuple[str, str]] = []  # (class, token)
        self.beats: list[tuple[str, list[str]]] = []  # (class, tokens)
        self.hook_threads: set[int] = set()  # threads the sync hooks ran in
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    def hold(self, token: str) -> asyncio.Event:
        """The tab's next delivery stops in its live_reload until the returned event is set."""
        gate = self.gates[token] = asyncio.Event()
        return gate

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


PROBE = Probe()


@pytest.fixture(autouse=True)
def probe() -> Probe:
    global PROBE
    PROBE = Probe()
    return PROBE


class TabBase(rx.State, mixin=True):
    """A page state as heaters.live expects one: apply_events changes memory, True asks for a reload."""

    got: list[list[str]] = []  # the event types of each batch this tab applied

    def apply_events(self, events: list[dict[str, Any]]) -> bool:
        if any(event.get("boom") for event in events):
            raise RuntimeError("this tab cannot apply that")
        self.got = [*self.got, [event["type"] for event in events]]
        PROBE.changed()
        return any(event.get("reload") for event in events)

    @classmethod
    async def live_reload(cls, app: rx.App, token: str) -> None:
        PROBE.reloads.append((cls.__name__, token))
        PROBE.changed()
        gate = PROBE.gates.pop(token, None)
        if gate is not None:
            PROBE.waiting.add(token)
            PROBE.changed()
            await gate.wait()
            PROBE.waiting.discard(token)


class LeavingBase(TabBase, mixin=True):
    @classmethod
    def live_left(cls, token: str) -> None:
        PROBE.hook_threads.add(threading.get_ident())
        PROBE.left.append((cls.__name__, token))


class HubNews(TabBase, rx.State):
    pass


class HubOther(TabBase, rx.State):
    pass


class HubNav(LeavingBase, rx.State):
    pass


class HubVideos(LeavingBase, rx.State):
    pass


class HubReview(LeavingBase, rx.State):
    pass


class HubHome(LeavingBase, rx.State):
    pass


class HubPrepared(TabBase, rx.State):
    @classmethod
    def live_prepare(cls, event: dict[str, Any]) -> dict[str, Any] | None:
        PROBE.hook_threads.add(threading.get_ident())
        PROBE.prepared.append(event["type"])
        if event["type"] == "drop":
            return None
        if event["type"] == "bad":
            raise RuntimeError("the row is gone")
        return {**event, "type": event["type"] + "+prepared"}


class HubLeases(LeavingBase, rx.State):
    @classmethod
    def live_heartbeat(cls, tokens: list[str]) -> None:
        PROBE.hook_threads.add(threading.get_ident())
        PROBE.beats.append((cls.__name__, list(tokens)))


class HubBadReload(TabBase, rx.State):
    @classmethod
    async def live_reload(cls, app: rx.App, token: str) -> None:
        PROBE.reloads.append((cls.__name__, token))
        raise RuntimeError("the reload query failed")


def tabs(n: int) -> list[str]:
    return [f"tab-{i}-{uuid.uuid4().hex[:8]}" for i in range(n)]


def ev(kind: str, *topics: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "topics": list(topics), **data}


async def got(app: rx.App, token: str, cls: type[TabBase]) -> list[list[str]]:
    """The batches this tab's state holds, read through Reflex's state manager."""
    async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
        state = await root.get_state(cls)
        return [list(batch) for batch in state.got]


async def deliver(hub: Hub, app: rx.App, *events: dict[str, Any]) -> None:
    """Each event on its own, delivered before the next (one batch each)."""
    for event in events:
        await hub.dispatch(app, event)
        await hub.idle()


def watching(hub: Hub, token: str, classes: list[type[rx.State]]) -> set[type[rx.State]]:
    return {cls for cls in classes if token in hub.tokens(cls)}


# --- routing -------------------------------------------------------------------------------------


def test_a_tab_hears_only_the_topics_it_watches_and_each_event_once(reflex_app: rx.App, run: Any) -> None:
    async def scenario() -> None:
        hub = Hub()
        lister, page, counts, both = tabs(4)
        hub.watch(lister, HubNews, ["videos"])
        hub.watch(page, HubNews, ["video:1"])
        hub.watch(counts, HubNews, ["counts"])
        hub.watch(both, HubNews, ["videos", "video:1"])
        await deliver(
            hub,
            reflex_app,
            ev("listed", "videos"),
            ev("paged", "video:1"),
            ev("changed", "videos", "video:1"),
            ev("elsewhere", "clip:9"),
        )
        assert await got(reflex_app, lister, HubNews) == [["listed"], ["changed"]]
        assert await got(reflex_app, page, HubNews) == [["paged"], ["changed"]]
        assert await got(reflex_app, counts, HubNews) == []
        # Two of its topics, one delivery.
        assert await got(reflex_app, both, HubNews) == [["listed"], ["paged"], ["changed"]]
        assert hub.receivers(["videos", "video:1"]) == {(lister, HubNews), (page, HubNews), (both, HubNews)}
        assert hub.receivers(["clip:9"]) == set()

    run(scenario())


def test_watch_replaces_the_topics_of_a_tab(reflex_app: rx.App, run: Any) -> None:
    async def scenario() -> None:
        hub = Hub()
        (tab,) = tabs(1)
        hub.watch(tab, HubNews, ["videos", "video:1"])
        hub.watch(tab, HubNews, ["video:2"])
        assert hub.topics(tab, HubNews) == {"video:2"}
        assert hub.receivers(["videos", "video:1"]) == set()
        await deliver(hub, reflex_app, ev("old", "videos"), ev("old page", "video:1"), ev("new", "video:2"))
        assert await got(reflex_app, tab, HubNews) == [["new"]]

    run(scenario())


def test_the_state_classes_of_one_tab_are_independent(reflex_app: rx.App, run: Any) -> None:
    async def scenario() -> None:
        hub = Hub()
        tab, neighbour = tabs(2)
        hub.watch(tab, HubNews, ["videos"])
        hub.watch(tab, HubOther, ["counts"])
        hub.watch(neighbour, HubNews, ["videos"])
        await deliver(hub, reflex_app, ev("list", "videos"), ev("count", "counts"))
        assert await got(reflex_app, tab, HubNews) == [["list"]]
        assert await got(reflex_app, tab, HubOther) == [["count"]]

        hub.watch(tab, HubOther, ["videos"])  # replaces HubOther's topics only
        assert hub.topics(tab, HubNews) == {"videos"}
        await deliver(hub, reflex_app, ev("list 2", "videos"), ev("count 2", "counts"))
        assert await got(reflex_app, tab, HubNews) == [["list"], ["list 2"]]
        assert await got(reflex_app, tab, HubOther) == [["count"], ["list 2"]]

        assert hub.unwatch(tab, keep=[HubNews]) == [HubOther]
        assert hub.topics(tab, HubOther) == frozenset()
        assert hub.topics(tab, HubNews) == {"videos"}
        assert hub.tokens(HubNews) == sorted([tab, neighbour])
        await deliver(hub, reflex_app, ev("list 3", "videos"))
        assert await got(reflex_app, tab, HubNews) == [["list"], ["list 2"], ["list 3"]]
        assert await got(reflex_app, tab, HubOther) == [["count"], ["list 2"]]
        assert await got(reflex_app, neighbour, HubNews) == [["list"], ["list 2"], ["list 3"]]

    run(scenario())


def test_entering_a_page_ends_the_other_pages_watches(reflex_app: rx.App, run: Any) -> None:
    classes: list[type[rx.State]] = [HubNav, HubVideos, HubReview, HubHome]

    async def scenario() -> None:
        hub = Hub()
        hub.keep_always(HubNav)
        hub.page("/videos/", HubVideos)  # a trailing slash when registered...
        hub.page("/review", HubReview)
        hub.page("/", HubHome)
        tab, other = tabs(2)
        for cls in classes:
            hub.watch(tab, cls, ["counts"])
            hub.watch(other, cls, ["counts"])

        await hub.enter_page(tab, "/videos")  # ...or none when entered
        assert watching(hub, tab, classes) == {HubNav, HubVideos}
        assert sorted(PROBE.left) == [("HubHome", tab), ("HubReview", tab)]
        assert watching(hub, other, classes) == set(classes)  # another tab is untouched

        hub.watch(tab, HubReview, ["clip:1"])
        await hub.enter_page(tab, "/review/")
        assert watching(hub, tab, classes) == {HubNav, HubReview}
        assert ("HubVideos", tab) in PROBE.left

        hub.watch(tab, HubHome, ["counts"])
        await hub.enter_page(tab, "")  # the root, however it is spelled
        assert watching(hub, tab, classes) == {HubNav, HubHome}
        await hub.enter_page(tab, "/")
        assert watching(hub, tab, classes) == {HubNav, HubHome}
        await hub.enter_page(tab, "/login")
        assert watching(hub, tab, classes) == {HubNav}
        assert sorted(PROBE.left) == sorted(
            [("HubHome", tab), ("HubReview", tab), ("HubVideos", tab), ("HubReview", tab), ("HubHome", tab)]
        )

        await deliver(hub, reflex_app, ev("counted", "counts", "clip:1"))
        assert await got(reflex_app, tab, HubNav) == [["counted"]]
        for gone in (HubVideos, HubReview, HubHome):
            assert await got(reflex_app, tab, gone) == []
            assert await got(reflex_app, other, gone) == [["counted"]]

        # unwatch forgets (and returns) the classes not kept; only leave gives back what they held.
        assert set(hub.unwatch(other, keep=[HubNav])) == {HubVideos, HubReview, HubHome}
        assert watching(hub, other, classes) == {HubNav}
        assert hub.unwatch(other) == [HubNav]
        assert other not in hub.tokens()
        assert all(token == tab for _, token in PROBE.left)
        assert threading.get_ident() not in PROBE.hook_threads  # live_left ran in a thread

    run(scenario())


def test_a_tab_that_stopped_watching_gets_no_queued_batch(reflex_app: rx.App, run: Any) -> None:
    async def scenario() -> None:
        hub = Hub()
        (tab,) = tabs(1)
        hub.watch(tab, HubNews, ["videos"])
        gate = PROBE.hold(tab)
        await hub.dispatch(reflex_app, ev("first", "videos", reload=True))
        await PROBE.until(lambda: tab in PROBE.waiting)
        await hub.dispatch(reflex_app, ev("queued", "videos"))
        hub.unwatch(tab)
        gate.set()
        await hub.idle()
        assert await got(reflex_app, tab, HubNews) == [["first"]]

    run(scenario())


# --- live_prepare --------------------------------------------------------------------------------


def test_live_prepare_runs_once_per_event_for_all_tabs(
    reflex_app: rx.App, run: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        hub = Hub()
        many = tabs(20)
        (plain,) = tabs(1)
        for i, token in enumerate(many):  # two topics of one event, half the tabs each
            hub.watch(token, HubPrepared, ["videos" if i % 2 else "video:7"])
        hub.watch(plain, HubNews, ["videos"])

        await deliver(hub, reflex_app, ev("changed", "videos", "video:7"))
        assert PROBE.prepared == ["changed"]
        assert threading.get_ident() not in PROBE.hook_threads
        for token in many:
            assert await got(reflex_app, token, HubPrepared) == [["changed+prepared"]]
        assert await got(reflex_app, plain, HubNews) == [["changed"]]

        # None drops the event for that class only; a failure drops it too and is logged.
        with caplog.at_level(logging.WARNING, logger="heaters.live"):
            await deliver(hub, reflex_app, ev("drop", "videos", "video:7"), ev("bad", "videos", "video:7"))
        assert PROBE.prepared == ["changed", "drop", "bad"]
        assert any("live.prepare_failed" in r.getMessage() and "HubPrepared" in r.getMessage() for r in caplog.records)
        for token in many:
            assert await got(reflex_app, token, HubPrepared) == [["changed+prepared"]]
        assert await got(reflex_app, plain, HubNews) == [["changed"], ["drop"], ["bad"]]

        await deliver(hub, reflex_app, ev("again", "video:7"))
        assert PROBE.prepared == ["changed", "drop", "bad", "again"]
        assert await got(reflex_app, many[0], HubPrepared) == [["changed+prepared"], ["again+prepared"]]
        assert await got(reflex_app, many[1], HubPrepared) == [["changed+prepared"]]

    run(scenario())


# --- coalescing and failures ---------------------------------------------------------------------


def test_a_burst_is_coalesced_per_tab_and_a_slow_tab_delays_no_other(reflex_app: rx.App, run: Any) -> None:
    """apply_events is called, not awaited, so the first delivery is held in the live_reload it asks for:
    the delivery of that tab is still running, as it would be during a slow reload query."""

    async def scenario() -> None:
        hub = Hub()
        slow, quick = tabs(2)
        hub.watch(slow, HubNews, ["videos"])
        hub.watch(quick, HubNews, ["videos"])
        gate = PROBE.hold(slow)

        await hub.dispatch(reflex_app, ev("e0", "videos", reload=True))
        await PROBE.until(lambda: slow in PROBE.waiting)
        for i in range(1, 51):
            await hub.dispatch(reflex_app, ev(f"e{i}", "videos", reload=True))
        burst = [f"e{i}" for i in range(1, 51)]

        # The quick tab gets both of its batches while the slow one still waits.
        await PROBE.until(lambda: PROBE.reloads.count(("HubNews", quick)) == 2)
        assert not gate.is_set()
        assert slow in PROBE.waiting
        assert await got(reflex_app, quick, HubNews) == [["e0"], burst]

        gate.set()
        await hub.idle()
        assert await got(reflex_app, slow, HubNews) == [["e0"], burst]
        assert PROBE.reloads.count(("HubNews", slow)) == 2

    run(scenario())


def test_a_failing_tab_does_not_stop_the_others(reflex_app: rx.App, run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        hub = Hub()
        broken, fine = tabs(2)
        hub.watch(broken, HubNews, ["clip:1", "videos"])
        hub.watch(fine, HubNews, ["videos"])
        with caplog.at_level(logging.WARNING, logger="heaters.live"):
            await hub.dispatch(reflex_app, ev("boom", "clip:1", boom=True))
            await hub.dispatch(reflex_app, ev("ok", "videos"))
            await hub.idle()
        assert await got(reflex_app, fine, HubNews) == [["ok"]]
        assert await got(reflex_app, broken, HubNews) == []  # its batch [boom, ok] failed as a whole
        failures = [r.getMessage() for r in caplog.records if "live.push_failed" in r.getMessage()]
        assert len(failures) == 1 and broken in failures[0]

        await deliver(hub, reflex_app, ev("later", "videos"))  # the broken tab is served again
        assert await got(reflex_app, broken, HubNews) == [["later"]]
        assert await got(reflex_app, fine, HubNews) == [["ok"], ["later"]]

    run(scenario())


def test_live_reload_runs_once_per_batch_that_asks(reflex_app: rx.App, run: Any) -> None:
    async def scenario() -> None:
        hub = Hub()
        tab, other = tabs(2)
        hub.watch(tab, HubNews, ["videos"])
        hub.watch(other, HubNews, ["counts"])
        gate = PROBE.hold(tab)
        await hub.dispatch(reflex_app, ev("r1", "videos", reload=True))
        await PROBE.until(lambda: tab in PROBE.waiting)
        for event in (ev("r2", "videos", reload=True), ev("r3", "videos", reload=True), ev("n4", "videos")):
            await hub.dispatch(reflex_app, event)
        gate.set()
        await hub.idle()
        assert await got(reflex_app, tab, HubNews) == [["r1"], ["r2", "r3", "n4"]]
        assert PROBE.reloads == [("HubNews", tab), ("HubNews", tab)]

        await hub.dispatch(reflex_app, ev("n5", "videos"))
        await hub.dispatch(reflex_app, ev("n6", "videos"))
        await hub.idle()
        assert await got(reflex_app, tab, HubNews) == [["r1"], ["r2", "r3", "n4"], ["n5", "n6"]]
        assert PROBE.reloads == [("HubNews", tab), ("HubNews", tab)]  # that batch did not ask

    run(scenario())


def test_a_failing_reload_does_not_stop_the_tab(reflex_app: rx.App, run: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        hub = Hub()
        (tab,) = tabs(1)
        hub.watch(tab, HubBadReload, ["videos"])
        with caplog.at_level(logging.WARNING, logger="heaters.live"):
            await deliver(hub, reflex_app, ev("r1", "videos", reload=True), ev("n2", "videos"))
        assert await got(reflex_app, tab, HubBadReload) == [["r1"], ["n2"]]
        assert PROBE.reloads == [("HubBadReload", tab)]
        assert any("live.push_failed" in r.getMessage() and tab in r.getMessage() for r in caplog.records)

    run(scenario())


# --- housekeeping --------------------------------------------------------------------------------


def test_connected_here_reads_the_reflex_token_manager(reflex_app: rx.App, run: Any) -> None:
    async def scenario() -> None:
        manager = reflex_app.event_namespace._token_manager  # type: ignore[union-attr]
        mine, elsewhere, unknown = tabs(3)
        await manager.link_token_to_sid(mine, "sid-mine")
        # What a Redis token manager knows of a tab whose websocket another web process holds.
        manager.token_to_socket[elsewhere] = SocketRecord(instance_id="another-process", sid="sid-x")
        connected = connected_here(reflex_app)
        assert connected(mine)
        assert not connected(elsewhere)
        assert not connected(unknown)
        await manager.disconnect_token(mine, "sid-mine")
        assert not connected(mine)

        class NoSockets:
            event_namespace = None

        assert not connected_here(NoSockets())(mine)  # type: ignore[arg-type]

    run(scenario())


def test_housekeeping_forgets_tabs_gone_for_two_rounds_and_beats_for_the_live_ones(
    reflex_app: rx.App, run: Any
) -> None:
    assert GONE_AFTER_ROUNDS == 2

    async def scenario() -> None:
        hub = Hub()
        manager = reflex_app.event_namespace._token_manager  # type: ignore[union-attr]
        connected = connected_here(reflex_app)
        a, b, c, d = tabs(4)
        for token in (a, b, c):
            hub.watch(token, HubLeases, ["counts"])
        hub.watch(b, HubNews, ["counts"])
        hub.watch(d, HubNews, ["counts"])  # a class without heartbeats
        for token in (a, b, c, d):
            await manager.link_token_to_sid(token, f"sid-{token}")

        await hub.housekeeping(connected)
        assert PROBE.beats == [("HubLeases", sorted([a, b, c]))]

        # b reloads: its websocket is gone for one round. It stays, without a heartbeat meanwhile.
        await manager.disconnect_token(b, f"sid-{b}")
        await hub.housekeeping(connected)
        assert b in hub.tokens(HubLeases) and b in hub.tokens(HubNews)
        assert PROBE.left == []
        assert PROBE.beats[-1] == ("HubLeases", sorted([a, c]))
        await manager.link_token_to_sid(b, f"sid2-{b}")
        await hub.housekeeping(connected)
        assert PROBE.beats[-1] == ("HubLeases", sorted([a, b, c]))

        # b closes: two rounds in a row, and it is forgotten (every class), its leases given back once.
        await manager.disconnect_token(b, f"sid2-{b}")
        await hub.housekeeping(connected)
        assert b in hub.tokens() and PROBE.left == []
        await hub.housekeeping(connected)
        assert b not in hub.tokens()
        assert PROBE.left == [("HubLeases", b)]
        assert PROBE.beats[-1] == ("HubLeases", sorted([a, c]))
        await hub.housekeeping(connected)
        assert PROBE.left == [("HubLeases", b)]
        assert hub.receivers(["counts"]) == {(a, HubLeases), (c, HubLeases), (d, HubNews)}

        # No live tab of a class: no heartbeat call at all.
        beats = len(PROBE.beats)
        await manager.disconnect_token(a, f"sid-{a}")
        await manager.disconnect_token(c, f"sid-{c}")
        await hub.housekeeping(connected)
        assert len(PROBE.beats) == beats
        assert all(cls == "HubLeases" for cls, _ in PROBE.beats)
        assert threading.get_ident() not in PROBE.hook_threads

    run(scenario())


def test_housekeeping_counts_only_consecutive_missed_rounds(reflex_app: rx.App, run: Any) -> None:
    """A round missed before the tab stopped watching must not count against its next watch: after it
    watches again, one missed round (a reload) keeps it, as for any tab."""

    async def scenario() -> None:
        hub = Hub()
        connected = connected_here(reflex_app)
        manager = reflex_app.event_namespace._token_manager  # type: ignore[union-attr]
        (tab,) = tabs(1)
        hub.page("/leases", HubLeases)
        hub.watch(tab, HubLeases, ["counts"])
        await hub.housekeeping(connected)  # its websocket is away for this round (a reload)
        await manager.link_token_to_sid(tab, "sid-1")
        await hub.enter_page(tab, "/elsewhere")  # reconnected on a page without live parts
        await hub.housekeeping(connected)
        hub.watch(tab, HubLeases, ["counts"])  # back on the page
        left = list(PROBE.left)
        await manager.disconnect_token(tab, "sid-1")  # one reload later...
        await hub.housekeeping(connected)  # ...one round without its websocket
        assert tab in hub.tokens(HubLeases), "a tab missing for one round was dropped"
        assert PROBE.left == left

    run(scenario())


def test_a_tab_whose_socket_is_not_here_gets_nothing(reflex_app: rx.App, run: Any) -> None:
    """A closed tab waiting out its grace rounds must not act on events (reload, take leases)."""

    async def scenario() -> None:
        hub = Hub()
        here, gone = tabs(2)
        hub.connected = {here}.__contains__
        hub.watch(here, HubNews, ["counts"])
        hub.watch(gone, HubNews, ["counts"])
        await deliver(hub, reflex_app, ev("counted", "counts", reload=True))
        assert await got(reflex_app, here, HubNews) == [["counted"]]
        assert await got(reflex_app, gone, HubNews) == []
        assert [token for _, token in PROBE.reloads] == [here]

    run(scenario())
