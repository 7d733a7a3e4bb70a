"""/clips: what review approved and the pipeline made of it: keyframe, video, frames, group, state, live.

Filterable by video and state (both in the URL); each card opens its similar clips on /query; a failed
clip shows its error and, for admins, a Retry.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from heaters import events, live, routes
from heaters.adapters import get_media_urls
from heaters.clips import service
from heaters.clips.repository import PAST_REVIEW, list_past_review
from heaters.components.layout import signed_in_page
from heaters.components.media import hover_video
from heaters.db import unit_of_work
from heaters.errors import HeatersError
from heaters.models import ClipState
from heaters.pipeline.dispatch import schedule
from heaters.settings import get_settings
from heaters.state import AuthState

ALL = "all"
STATES = [ALL, *(s.value for s in PAST_REVIEW)]
PAGE = 48


def _card(clip: dict[str, Any]) -> dict[str, Any]:
    ttl = get_settings().presign_ttl_seconds
    urls = get_media_urls()
    return {
        "id": clip["id"],
        "video_title": clip["video_title"] or f"Video {clip['video_id']}",
        "frames": f"{clip['start_frame']:,} to {clip['end_frame'] - 1:,}",
        "duration": f"{clip['seconds']:.1f} s" if clip["seconds"] else f"{clip['frames']} frames",
        "group": clip["grouped_with"] or 0,
        "state": clip["state"],
        "failed": clip["failed"],
        "error": clip["last_error"] or "",
        "src": urls.get_url(clip["key"], expires_in=ttl) if clip["key"] else "",
        "poster": urls.get_url(clip["keyframe_key"], expires_in=ttl) if clip["keyframe_key"] else "",
        "similar": routes.query_clip(clip["id"]),
    }


def _list(video: int, state: str, offset: int) -> list[dict[str, Any]]:
    with unit_of_work() as session:
        clips = list_past_review(
            session,
            video_id=video or None,
            state=ClipState(state) if state != ALL else None,
            limit=PAGE + 1,
            offset=offset,
        )
    return [_card(c) for c in clips]


def _videos() -> list[dict[str, str]]:
    from sqlalchemy import text

    with unit_of_work() as session:
        rows = session.execute(
            text(
                "SELECT DISTINCT v.id, v.title FROM source_videos v JOIN clips c ON c.source_video_id = v.id "
                "WHERE c.ingest_state = ANY(:states) ORDER BY v.title, v.id"
            ),
            {"states": [s.value for s in PAST_REVIEW]},
        ).all()
    return [{"id": str(r.id), "title": r.title or f"Video {r.id}"} for r in rows]


def _retry(clip_id: int) -> str:
    with unit_of_work() as session:
        stage = service.retry(session, clip_id)
        schedule(session, stage, clip_id)
    return stage.key


class ClipsState(rx.State):
    clips: list[dict[str, Any]] = []
    videos: list[dict[str, str]] = []
    video: str = ALL
    state: str = ALL
    offset: int = 0
    has_next: bool = False
    message: str = ""
    loaded: bool = False

    def _url(self) -> str:
        params: dict[str, Any] = {}
        if self.video != ALL:
            params["video"] = self.video
        if self.state != ALL:
            params["state"] = self.state
        if self.offset:
            params["offset"] = self.offset
        return routes.CLIPS + (f"?{urlencode(params)}" if params else "")

    async def _reload(self) -> Any:
        if not (await self.get_state(AuthState)).username:  # every handler lands here: signed-in tabs only
            return None
        video = int(self.video) if self.video.isdigit() else 0
        cards, self.videos = await asyncio.gather(
            asyncio.to_thread(_list, video, self.state, self.offset), asyncio.to_thread(_videos)
        )
        self.has_next = len(cards) > PAGE
        self.clips = cards[:PAGE]
        self.loaded = True
        live.hub.watch(self.router.session.client_token, ClipsState, [events.CLIPS])
        return rx.call_script(f"window.history.replaceState(null, '', {json.dumps(self._url())})")

    @rx.event
    async def load(self) -> Any:
        if not (await self.get_state(AuthState)).username:
            return None
        params = self.router.url.query_parameters
        video, state = str(params.get("video") or ALL), str(params.get("state") or ALL)
        self.video = video if video.isdigit() else ALL
        self.state = state if state in STATES else ALL
        offset = str(params.get("offset") or "0")
        self.offset = int(offset) if offset.isdigit() else 0
        self.message = ""
        return await self._reload()

    @rx.event
    async def set_video(self, value: str) -> Any:
        self.video, self.offset = (value if value.isdigit() else ALL), 0
        return await self._reload()

    @rx.event
    async def set_state(self, value: str) -> Any:
        self.state, self.offset = (value if value in STATES else ALL), 0
        return await self._reload()

    @rx.event
    async def go_page(self, delta: int) -> Any:
        self.offset = max(0, self.offset + int(delta) * PAGE)
        return await self._reload()

    @rx.event
    async def retry(self, clip_id: int) -> Any:
        user = await (await self.get_state(AuthState)).current_user()
        if user is None or not user.is_admin:
            self.message = "Only an admin can retry a clip."
            return None
        try:
            stage = await asyncio.to_thread(_retry, int(clip_id))
        except HeatersError as error:
            self.message = str(error)
            return None
        self.message = f"Clip {clip_id}: {stage} queued again."
        return await self._reload()

    def apply_events(self, batch: list[dict[str, Any]]) -> bool:
        """A clip changed state somewhere: ask for a reload of the page shown (one per batch)."""
        return any(event.get("type") in {"clip.state", "stage.failed"} for event in batch)

    @classmethod
    async def live_reload(cls, app: rx.App, token: str) -> None:
        async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
            state = await root.get_state(cls)
            video = int(state.video) if state.video.isdigit() else 0
            cards = await asyncio.to_thread(_list, video, state.state, state.offset)
            state.has_next, state.clips = len(cards) > PAGE, cards[:PAGE]


def _card_view(card: Any) -> rx.Component:
    return rx.card(
        rx.vstack(
            hover_video(card, "clip-video"),
            rx.hstack(
                rx.text("#", card["id"].to(str), weight="bold"),
                rx.badge(
                    card["state"].to(str),
                    color_scheme=rx.cond(card["failed"].to(bool), "red", "gray"),
                    custom_attrs={"data-testid": "clip-state"},
                ),
                rx.spacer(),
                rx.text(card["duration"].to(str), size="1", color_scheme="gray"),
                width="100%",
                align="center",
            ),
            rx.text(card["video_title"].to(str), size="1"),
            rx.text("Frames ", card["frames"].to(str), size="1", color_scheme="gray"),
            rx.cond(
                card["group"].to(int) > 0,
                rx.text("Grouped with #", card["group"].to(str), size="1", custom_attrs={"data-testid": "clip-group"}),
            ),
            rx.cond(
                card["failed"].to(bool),
                rx.vstack(
                    rx.text(
                        card["error"].to(str), size="1", color_scheme="red", custom_attrs={"data-testid": "clip-error"}
                    ),
                    rx.cond(
                        AuthState.is_admin,
                        rx.button("Retry", size="1", on_click=ClipsState.retry(card["id"].to(int))),  # type: ignore[operator]
                    ),
                    spacing="1",
                ),
            ),
            rx.link("Find similar", href=card["similar"].to(str), size="1"),
            spacing="1",
        ),
        custom_attrs={"data-testid": "clip-card", "data-clip-id": card["id"].to(str), "data-hover-card": "1"},
    )


@signed_in_page
def clips_page() -> rx.Component:
    return rx.vstack(
        rx.script(src="/query.js"),
        rx.heading("Clips", size="6"),
        rx.hstack(
            rx.select.root(
                rx.select.trigger(placeholder="All videos"),
                rx.select.content(
                    rx.select.item("All videos", value=ALL),
                    rx.foreach(ClipsState.videos, lambda v: rx.select.item(v["title"], value=v["id"])),
                ),
                value=ClipsState.video,
                on_change=ClipsState.set_video,
                name="video",
            ),
            rx.select(STATES, value=ClipsState.state, on_change=ClipsState.set_state, name="state"),
            spacing="2",
        ),
        rx.cond(ClipsState.message != "", rx.callout(ClipsState.message, id="clips-message")),
        rx.cond(
            ClipsState.loaded,
            rx.cond(
                ClipsState.clips.length() > 0,  # type: ignore[attr-defined]
                rx.grid(rx.foreach(ClipsState.clips, _card_view), columns="4", spacing="3", width="100%"),
                rx.text("No clips here yet: approved clips appear once review decides them.", id="clips-empty"),
            ),
            rx.center(rx.spinner(size="3"), height="30vh"),
        ),
        rx.hstack(
            rx.button(
                "Previous",
                on_click=ClipsState.go_page(-1),  # type: ignore[operator]
                disabled=ClipsState.offset <= 0,
                variant="soft",
            ),
            rx.button("Next", on_click=ClipsState.go_page(1), disabled=~ClipsState.has_next, variant="soft"),  # type: ignore[operator]
            spacing="3",
        ),
        spacing="4",
        width="100%",
        max_width="1200px",
    )
