"""The review page's state: the tab's queue (current clip first), its video elements, and live updates.

Handlers parse, run the blocking part in a thread (`heaters.review.screen`), and assign. An action
advances the page at once (the next clip is already loaded in its own video element) and is committed
right after; if the server refuses it, the page goes back to the clip and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import reflex as rx

from heaters import events, live, routes
from heaters.components.progress import NO_INGEST, ingest_view
from heaters.db import unit_of_work
from heaters.models import ReviewActionKind
from heaters.review import queue, rules, screen, slots
from heaters.review.errors import ReviewError
from heaters.review.leases import Reviewer
from heaters.review.timeline import Timeline
from heaters.settings import get_settings
from heaters.state import AuthState
from heaters.videos.repository import video_ingest

KINDS = {k.value: k for k in ReviewActionKind}
EMPTY_SLOT: dict[str, Any] = {
    "clip_id": 0,
    "url": "",
    "status": "empty",
    "error": "",
    "start_frame": 0,
    "end_frame": 0,
    "fps_num": 0,
    "fps_den": 1,
}


# Events after which a video's chunked-ingest bar is read again (once per web process, in live_prepare).
INGEST_EVENTS = frozenset({"video.chunks", "video.clips_ready", "video.state"})


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _ingest(video_id: int) -> dict[str, Any]:
    with unit_of_work() as session:
        return ingest_view(video_ingest(session, video_id))


def _news(video_id: int, *, with_timeline: bool) -> dict[str, Any]:
    """What an ingest event means for the review page: the video's bar, and (new clips) its timeline."""
    with unit_of_work() as session:
        news: dict[str, Any] = {"ingest": ingest_view(video_ingest(session, video_id))}
        if with_timeline:  # built once here, shared by every tab of this process (immutable)
            news["timeline"] = Timeline.from_rows(queue.timeline(session, video_id))
    return news


class ReviewState(rx.State):
    # What is rendered. Media never enters the state: only URLs of our own media route.
    slots: list[dict[str, Any]] = []
    current_slot: int = -1
    current: dict[str, Any] = {}
    loaded: bool = False
    pending_total: int = 0
    video_pending: int = 0
    undo_depth: int = 0
    timeline: str = ""  # compact JSON that assets/review.js draws (see heaters.review.timeline)
    current_id: int = 0
    prev_url: str = ""
    next_url: str = ""
    message: str = ""
    message_tone: str = "gray"
    show_help: bool = False
    video_filter: int = 0
    ingest: dict[str, Any] = NO_INGEST  # the shown video's chunked encode and scan (heaters.components.progress)

    # Backend only: never sent to the browser.
    _queue: list[int] = []
    _cards: dict[int, dict[str, Any]] = {}
    _temp: dict[int, dict[str, str]] = {}
    _slot_clips: list[int] = []
    _timeline: Timeline = Timeline()  # a tuple: Reflex does not wrap it in a change-tracking proxy
    _user_id: int = 0

    # --- loading -------------------------------------------------------------------------------

    @rx.event
    async def load(self) -> None:
        auth = await self.get_state(AuthState)
        if not auth.username:
            return
        self._user_id = auth._user_id
        params = self.router.url.query_parameters
        self.video_filter = _int(params.get("video"))
        focus = _int(params.get("clip")) or None
        self.message, self.show_help = "", False
        size = get_settings().review_prefetch + 1
        if len(self._slot_clips) != size:
            self._slot_clips = [slots.EMPTY] * size
        held = await self._refresh(focus=focus, reload_timeline=True)
        if held.note:
            self._say(held.note, "red")
        self.loaded = True

    def _reviewer(self) -> Reviewer:
        return Reviewer(self._user_id, self.router.session.client_token)

    async def _refresh(
        self, *, focus: int | None = None, run: screen.Action | None = None, reload_timeline: bool = False
    ) -> screen.Held:
        """Settle the queue (after `run`, an action), subscribe to its topics, then load what it shows."""
        settings = get_settings()
        reviewer = self._reviewer()
        held = await asyncio.to_thread(
            screen.hold,
            reviewer,
            current=list(self._queue),
            want=settings.review_prefetch + 1,
            lease_seconds=settings.review_lease_seconds,
            video_id=self.video_filter or None,
            focus=focus,
            run=run,
        )
        self._queue, self._cards = held.queue, held.cards
        # The current clip first, then the queue, then the context strip's neighbours of the current and the
        # next clip (the others' are asked for when they come up): temp clips are made in this order.
        neighbours = [n for c in self._queue[:2] for n in (self._cards[c]["prev_id"], self._cards[c]["next_id"]) if n]
        wanted = list(dict.fromkeys([*self._queue, *neighbours]))
        video = self._cards[self._queue[0]]["video_id"] if self._queue else self.video_filter or self._timeline.video_id
        live.hub.watch(reviewer.holder, ReviewState, self._topics(set(wanted), video))
        if not video:
            self.ingest = dict(NO_INGEST)
        elif reload_timeline or video != self.ingest.get("video_id"):
            # Read once per video; from then on the video's events keep it current (see live_prepare).
            self.ingest = await asyncio.to_thread(_ingest, video)
        shown = await asyncio.to_thread(
            screen.screen,
            reviewer,
            wanted,
            video_id=video or None,
            # The timeline stays current through events; it is read again only for another video.
            with_timeline=reload_timeline or video != self._timeline.video_id,
            shared_playback=settings.playback_shared,
        )
        self._temp = shown.temp
        if shown.timeline is not None:
            self._timeline = Timeline.from_rows(shown.timeline)
        self.pending_total, self.video_pending, self.undo_depth = (
            shown.pending_total,
            shown.video_pending,
            shown.undo_depth,
        )
        self._render(timeline=True)
        return held

    def _topics(self, clip_ids: set[int], video_id: int) -> list[str]:
        topics = [events.COUNTS, *(events.clip_topic(c) for c in clip_ids)]
        return [*topics, events.video_topic(video_id)] if video_id else topics

    # --- rendering -----------------------------------------------------------------------------

    def _render(self, *, timeline: bool = False) -> None:
        """Derive what is shown from the queue, the cards and the temp clips (and the timeline, if asked:
        it only changes with the clips of the video, not with the current clip)."""
        self._slot_clips = slots.assign(self._slot_clips, self._queue, len(self._slot_clips) or 1)
        self.slots = [self._slot(c) for c in self._slot_clips]
        head = self._queue[0] if self._queue else 0
        self.current_slot = self._slot_clips.index(head) if head else -1
        self.current_id = head
        self.current = dict(self._cards.get(head, {}))
        if self.current:
            temp = self._temp.get(head, {})
            self.current["status"] = temp.get("state", "generating")
            self.current["error"] = temp.get("error", "")
            if self._timeline.video_id == self.current["video_id"]:
                self.current["position"], self.current["clip_total"] = self._timeline.position(head)
        prev_frames = self.current.get("prev_frames", 0)
        self.prev_url = self._neighbour_url(self.current.get("prev_id", 0), last_frame=prev_frames)
        self.next_url = self._neighbour_url(self.current.get("next_id", 0), last_frame=0)
        if timeline:
            self.timeline = self._timeline.encode()

    def _slot(self, clip_id: int) -> dict[str, Any]:
        card = self._cards.get(clip_id)
        if not clip_id or card is None:
            return dict(EMPTY_SLOT)
        temp = self._temp.get(clip_id, {})
        return {
            "clip_id": clip_id,
            "url": temp.get("url", ""),
            "status": temp.get("state", "generating"),
            "error": temp.get("error", ""),
            "start_frame": card["start_frame"],
            "end_frame": card["end_frame"],
            "fps_num": card["fps_num"],
            "fps_den": card["fps_den"],
        }

    def _neighbour_url(self, clip_id: int, *, last_frame: int) -> str:
        url = self._temp.get(clip_id, {}).get("url", "") if clip_id else ""
        if not url or not self.current:
            return ""
        fps = self.current["fps_num"] / max(1, self.current["fps_den"])
        seconds = (last_frame - 0.5) / fps if last_frame and fps else 0.0
        return f"{url}#t={seconds:.3f}"

    def _say(self, text: str, tone: str = "gray") -> None:
        self.message, self.message_tone = text, tone

    # --- commands (keys and buttons) -----------------------------------------------------------

    @rx.event
    async def command(self, command: dict[str, Any]) -> AsyncIterator[Any]:
        """Every key and button lands here with the clip the browser showed and the frame on screen."""
        auth = await self.get_state(AuthState)
        if not auth.signed_in or not auth.username:  # the session expired while the page stayed open
            yield rx.redirect(routes.login_with_next(routes.REVIEW))
            return
        action = str(command.get("action", ""))
        if action == "help":
            self.show_help = not self.show_help
            return
        if action == "escape":
            self.show_help = False
            return
        if await auth.current_user() is None:  # deactivated since the page loaded: no more decisions
            yield rx.redirect(routes.login_with_next(routes.REVIEW))
            return
        if action == "undo":
            async for update in self._undo():
                yield update
            return
        if action == "open":
            await self._open(_int(command.get("open")))
            return
        kind = KINDS.get(action)
        if kind is None or not self.loaded:
            return
        async for update in self._act(kind, _int(command.get("clip")), _int(command.get("frame"), -1)):
            yield update

    async def _act(self, kind: ReviewActionKind, clip_id: int, frame: int) -> AsyncIterator[Any]:
        if not self._queue or clip_id != self._queue[0]:
            return  # a second press, or a stale tab: the page has already moved on from that clip
        card = self._cards[clip_id]
        problem = self._problem(kind, card, frame)
        if problem:
            self._say(problem, "red")
            return
        before = list(self._queue)
        self._queue = self._queue[1:]
        self._render()
        self._say("", "gray")
        yield  # the next clip is on screen now; the commit follows
        settings = get_settings()
        run = screen.act(kind, clip_id, self._reviewer(), frame if frame >= 0 else None, settings.review_lease_seconds)
        try:
            held = await self._refresh(run=run)
        except ReviewError as error:
            self._queue = before
            self._render()
            self._say(str(error), "red")
            yield
            await self._refresh()
            return
        self._say(held.result.message if held.result else "", "green")

    def _problem(self, kind: ReviewActionKind, card: dict[str, Any], frame: int) -> str:
        if kind is ReviewActionKind.MERGE and card["merge_problem"]:
            return f"Merge is not available: {card['merge_problem']}"
        if kind is ReviewActionKind.GROUP and card["group_problem"]:
            return f"Group is not available: {card['group_problem']}"
        if kind is ReviewActionKind.SPLIT:
            if frame < 0:
                return "Step to the frame to split at first (← / →)."
            problem = rules.split_problem(card["start_frame"], card["end_frame"], frame)
            if problem:
                return f"Cannot split: {problem}"
        return ""

    async def _undo(self) -> AsyncIterator[Any]:
        settings = get_settings()
        try:
            held = await self._refresh(run=screen.undo(self._reviewer(), settings.review_lease_seconds))
        except ReviewError as error:
            self._say(str(error), "red")
            return
        self._say(held.result.message if held.result else "Undone.", "green")
        yield

    async def _open(self, clip_id: int) -> None:
        """A waiting clip of the timeline was clicked."""
        if not clip_id or (self._queue and self._queue[0] == clip_id):
            return
        held = await self._refresh(focus=clip_id)
        if held.note:
            self._say(held.note, "red")

    @rx.event
    async def retry_temp_clip(self, clip_id: int) -> None:
        if not (await self.get_state(AuthState)).username:
            return
        await asyncio.to_thread(screen.retry_temp_clip, clip_id)
        self._temp[clip_id] = {"state": "generating", "url": "", "error": ""}
        self._render()

    @rx.event
    def close_help(self) -> None:
        self.show_help = False

    # --- live updates (heaters.live) -----------------------------------------------------------

    @classmethod
    def live_prepare(cls, event: dict[str, Any]) -> dict[str, Any]:
        """Once per web process and event: a video's ingest bar after its chunk, clip and state events, and
        its timeline when clips were released (every tab on that video then draws the same, unread)."""
        video_id = _int(event.get("video_id"))
        if event.get("type") not in INGEST_EVENTS or not video_id:
            return event
        # Every review tab hears clips_ready (the counts); only the tabs showing the video need its news.
        # (`receivers` only reads the hub's sets, in one C-level step each: safe from this thread.)
        if not any(c is cls for _, c in live.hub.receivers([events.video_topic(video_id)])):
            return event
        return {**event, **_news(video_id, with_timeline=event.get("type") == "video.clips_ready")}

    def apply_events(self, batch: list[dict[str, Any]]) -> bool:
        """Apply what the events carry; True when the queue itself must be settled again (one reload).

        New clips of a video (a chunked scan releases them a few at a time) join the end of the queue if
        it has room; the clip on screen and the ones prepared after it keep their place and their players.
        """
        me = self._reviewer().tag
        reload = timeline = False
        for event in batch:
            kind = event.get("type")
            video_id = _int(event.get("video_id"))
            if "ingest" in event and video_id and video_id == self.ingest.get("video_id"):
                self.ingest = event["ingest"]
            if "pending_total" in event:
                self.pending_total = int(event["pending_total"])
                if self._timeline.video_id == event.get("video_id"):
                    self.video_pending = int(event["video_pending"])
            if kind == "temp_clip.ready":
                self._temp[int(event["clip_id"])] = {"state": "ready", "url": str(event["url"]), "error": ""}
            elif kind == "temp_clip.failed":
                self._temp[int(event["clip_id"])] = {"state": "failed", "url": "", "error": str(event["error"])}
            elif kind == "clips.changed":
                if self._timeline.video_id == event.get("video_id"):
                    self._timeline = self._timeline.apply(event)
                    timeline = True
                if event.get("actor") != me:  # this tab's own action has already settled its queue
                    self._cards, again = queue.reaction(dict(self._cards), list(self._queue), event, me)
                    reload |= again
            elif kind == "video.clips_ready":
                if isinstance(event.get("timeline"), Timeline) and self._timeline.video_id == video_id:
                    self._timeline = event["timeline"]
                    timeline = True
                room = len(self._queue) < len(self._slot_clips)
                # A queued clip at the end of what was released may have a next clip now (the context strip).
                edge = any(c["video_id"] == video_id and not c["next_id"] for c in self._cards.values())
                reload |= (room and self.video_filter in (0, video_id)) or edge
            elif kind == "video.chunks" and self._timeline.video_id == video_id:
                # The timeline reaches as far as the scan (review.queue.timeline) until the proxy is whole.
                scanned = _int(event.get("scanned_frames"))
                if scanned > self._timeline.frame_count and self.ingest.get("active"):
                    self._timeline = self._timeline._replace(frame_count=scanned)
                    timeline = True
        self._render(timeline=timeline)
        return reload

    @classmethod
    async def live_reload(cls, app: rx.App, token: str) -> None:
        async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
            state = await root.get_state(cls)
            with contextlib.suppress(ReviewError):
                await state._refresh()

    @classmethod
    def live_heartbeat(cls, tokens: list[str]) -> None:
        screen.heartbeat(tokens, get_settings().review_lease_seconds)

    @classmethod
    def live_left(cls, token: str) -> None:
        screen.release(token)
