"""/query: a main clip that plays, and the clips most like it (cosine, HNSW), 12 a page, filters in the URL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, replace
from typing import Any

import reflex as rx

from heaters.components.layout import signed_in_page
from heaters.components.media import hover_video
from heaters.db import unit_of_work
from heaters.search import page as search_page
from heaters.settings import get_settings
from heaters.state import AuthState

ALL = "all"  # the source-video filter's "every video"; model and strategy have no "all": spaces never mix


def _search(query: search_page.Query) -> dict[str, Any]:
    with unit_of_work() as session:
        result = search_page.run(session, query, get_settings())
    return {**asdict(result), "url": result.query.url()}


def _from_url(params: dict[str, str]) -> search_page.Query:
    return search_page.parse(params, get_settings())


class QueryState(rx.State):
    model: str = ""
    strategy: str = ""
    video: str = ALL
    sort: str = "similar"
    page: int = 1
    clip: int = 0
    models: list[str] = []
    strategies: list[str] = []
    videos: list[dict[str, str]] = []
    main: dict[str, Any] = {}
    similar: list[dict[str, Any]] = []
    has_next: bool = False
    note: str = ""
    loaded: bool = False

    def _query(self) -> search_page.Query:
        sort: Any = self.sort
        return search_page.Query(
            model=self.model,
            strategy=self.strategy,
            clip=self.clip,
            video=int(self.video) if self.video.isdigit() else 0,
            page=self.page,
            sort=sort,
        )

    async def _show(self, query: search_page.Query) -> Any:
        if not (await self.get_state(AuthState)).username:  # every handler lands here: signed-in tabs only
            return None
        data = await asyncio.to_thread(_search, query)
        found = data["query"]
        self.model, self.strategy, self.clip = found["model"], found["strategy"], found["clip"]
        self.video = str(found["video"]) if found["video"] else ALL
        self.page, self.sort = found["page"], found["sort"]
        self.models = data["models"] or [self.model]
        self.strategies = data["strategies"] or [self.strategy]
        self.videos = [{"id": str(v["id"]), "title": v["title"]} for v in data["videos"]]
        self.main = data["main"] or {}
        self.similar = data["similar"]
        self.has_next, self.note, self.loaded = data["has_next"], data["note"], True
        # The address bar always holds the search shown, so it can be shared or reloaded.
        return rx.call_script(f"window.history.replaceState(null, '', {json.dumps(data['url'])})")

    @rx.event
    async def load(self) -> Any:
        return await self._show(_from_url(dict(self.router.url.query_parameters)))

    @rx.event
    async def open_clip(self, clip_id: int) -> Any:
        return await self._show(replace(self._query(), clip=int(clip_id), page=1))

    @rx.event
    async def shuffle(self) -> Any:
        return await self._show(replace(self._query(), clip=0, page=1))

    @rx.event
    async def set_model(self, value: str) -> Any:
        return await self._show(replace(self._query(), model=value, strategy="", page=1))

    @rx.event
    async def set_strategy(self, value: str) -> Any:
        return await self._show(replace(self._query(), strategy=value, page=1))

    @rx.event
    async def set_video(self, value: str) -> Any:
        video = int(value) if value.isdigit() else 0
        return await self._show(replace(self._query(), video=video, clip=0, page=1))

    @rx.event
    async def toggle_sort(self) -> Any:
        sort: Any = "dissimilar" if self.sort == "similar" else "similar"
        return await self._show(replace(self._query(), sort=sort))

    @rx.event
    async def go_page(self, delta: int) -> Any:
        return await self._show(replace(self._query(), page=max(1, self.page + int(delta))))


def _card(card: Any) -> rx.Component:
    return rx.card(
        rx.vstack(
            hover_video(card, "similar-video"),
            rx.hstack(
                rx.text("#", card["id"].to(str), weight="bold"),
                rx.badge(
                    card["similarity"].to(str) + "%", color_scheme="orange", custom_attrs={"data-testid": "similarity"}
                ),
                rx.spacer(),
                rx.text(card["duration"].to(str), size="1", color_scheme="gray"),
                width="100%",
                align="center",
            ),
            rx.text(card["video_title"].to(str), size="1", color_scheme="gray", trim="both"),
            spacing="1",
        ),
        on_click=QueryState.open_clip(card["id"].to(int)),  # type: ignore[operator]
        cursor="pointer",
        custom_attrs={"data-testid": "similar-card", "data-clip-id": card["id"].to(str)},
    )


def _filters() -> rx.Component:
    return rx.hstack(
        rx.select(QueryState.models, value=QueryState.model, on_change=QueryState.set_model, size="2", name="model"),
        rx.select(
            QueryState.strategies,
            value=QueryState.strategy,
            on_change=QueryState.set_strategy,
            size="2",
            name="strategy",
        ),
        rx.select.root(
            rx.select.trigger(placeholder="All videos"),
            rx.select.content(
                rx.select.item("All videos", value=ALL),
                rx.foreach(QueryState.videos, lambda v: rx.select.item(v["title"], value=v["id"])),
            ),
            value=QueryState.video,
            on_change=QueryState.set_video,
            size="2",
            name="video",
        ),
        rx.button("Random clip", on_click=QueryState.shuffle, variant="soft", id="query-shuffle"),
        rx.button(
            rx.cond(QueryState.sort == "similar", "Most similar first", "Least similar first"),
            on_click=QueryState.toggle_sort,
            variant="soft",
            id="query-sort",
        ),
        spacing="2",
        wrap="wrap",
        align="center",
    )


def _main() -> rx.Component:
    main = QueryState.main
    return rx.cond(
        QueryState.clip > 0,
        rx.hstack(
            rx.el.video(
                src=main["src"].to(str),
                poster=main["poster"].to(str),
                auto_play=True,
                muted=True,
                loop=True,
                plays_inline=True,
                class_name="query-main",
                custom_attrs={"data-testid": "player", "data-clip-id": main["id"].to(str)},
            ),
            rx.vstack(
                rx.heading("Clip #", main["id"].to(str), size="4"),
                rx.text(main["video_title"].to(str)),
                rx.text("Frames ", main["frames"].to(str), " · ", main["duration"].to(str), color_scheme="gray"),
                rx.cond(
                    main["group"].to(int) > 0,
                    rx.text("Grouped with clip #", main["group"].to(str), color_scheme="gray"),
                ),
                rx.text(QueryState.model, " · ", QueryState.strategy, size="1", color_scheme="gray"),
                spacing="1",
            ),
            spacing="4",
            align="start",
            id="query-main",
        ),
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            "Previous",
            on_click=QueryState.go_page(-1),  # type: ignore[operator]
            disabled=QueryState.page <= 1,
            variant="soft",
            id="query-prev",
        ),
        rx.text("Page ", QueryState.page, id="query-page"),
        rx.button(
            "Next",
            on_click=QueryState.go_page(1),  # type: ignore[operator]
            disabled=~QueryState.has_next,
            variant="soft",
            id="query-next",
        ),
        spacing="3",
        align="center",
    )


@signed_in_page
def query_page() -> rx.Component:
    return rx.vstack(
        rx.script(src="/query.js"),
        rx.heading("Similar clips", size="6"),
        _filters(),
        rx.cond(
            QueryState.loaded,
            rx.vstack(
                _main(),
                rx.cond(QueryState.note != "", rx.callout(QueryState.note, color_scheme="gray", id="query-note")),
                rx.grid(rx.foreach(QueryState.similar, _card), columns="4", spacing="3", width="100%", id="query-grid"),
                _pager(),
                spacing="4",
                width="100%",
            ),
            rx.center(rx.spinner(size="3"), height="30vh"),
        ),
        spacing="4",
        width="100%",
        max_width="1200px",
    )
