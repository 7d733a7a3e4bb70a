"""/ : where a signed-in reviewer lands: what is waiting, and where to go next."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx
from sqlalchemy import func
from sqlmodel import select

from heaters import routes
from heaters.components.layout import signed_in_page
from heaters.db import unit_of_work
from heaters.models import Clip, ClipState, SourceVideo
from heaters.state import AuthState


def _counts() -> tuple[int, int]:
    with unit_of_work() as session:
        videos = session.exec(select(func.count()).select_from(SourceVideo)).one()
        pending = session.exec(
            select(func.count()).select_from(Clip).where(Clip.ingest_state == ClipState.PENDING_REVIEW.value)
        ).one()
        return int(videos), int(pending)


class HomeState(rx.State):
    videos: int = 0
    pending_clips: int = 0

    @rx.event
    async def load(self) -> None:
        if not (await self.get_state(AuthState)).username:
            return
        self.videos, self.pending_clips = await asyncio.to_thread(_counts)


def _card(title: str, value: Any, note: str, href: str) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.text(title, weight="bold"),
                rx.heading(value, size="7"),
                rx.text(note, size="2", color_scheme="gray"),
            ),
            width="16em",
        ),
        href=href,
        underline="none",
    )


@signed_in_page
def home_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Welcome, ", AuthState.username, size="6"),
        rx.hstack(
            _card("Videos", HomeState.videos, "ingested so far", routes.VIDEOS),
            _card("Review", HomeState.pending_clips, "clips waiting for review", routes.REVIEW),
            _card("Search", "—", "similar clips, once clips are embedded", routes.HOME),
            spacing="4",
            wrap="wrap",
        ),
        spacing="5",
    )
