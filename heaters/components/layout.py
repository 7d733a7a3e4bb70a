"""The frame every signed-in page shares: navigation with the live review count, who is signed in, sign-out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import reflex as rx

from heaters import events, live, routes
from heaters.clips.repository import pending_total
from heaters.components.native_form import native_form
from heaters.db import unit_of_work
from heaters.state import AuthState


def _pending_total() -> int:
    with unit_of_work() as session:
        return pending_total(session)


class NavState(rx.State):
    """How many clips wait for review, on every page, kept current by the events that change it."""

    pending: int = 0

    @rx.event
    async def load(self) -> None:
        if not (await self.get_state(AuthState)).username:
            return
        live.hub.watch(self.router.session.client_token, NavState, [events.COUNTS])
        self.pending = await asyncio.to_thread(_pending_total)

    def apply_events(self, batch: list[dict[str, Any]]) -> bool:
        for event in batch:
            if "pending_total" in event:
                self.pending = int(event["pending_total"])
        return False


def nav() -> rx.Component:
    return rx.hstack(
        rx.link(rx.heading("Heaters", size="5"), href=routes.HOME, underline="none"),
        rx.link(
            rx.hstack(
                rx.text("Review"),
                rx.cond(
                    NavState.pending > 0,
                    rx.badge(NavState.pending, color_scheme="orange", id="nav-pending"),
                ),
                spacing="1",
                align="center",
            ),
            href=routes.REVIEW,
        ),
        rx.link("Videos", href=routes.VIDEOS),
        rx.link("Clips", href=routes.CLIPS),
        rx.link("Similar", href=routes.QUERY),
        rx.cond(AuthState.is_admin, rx.link("Admin", href=routes.ADMIN)),
        rx.spacer(),
        rx.text("Signed in as ", rx.text.strong(AuthState.username, id="current-user"), size="2"),
        native_form(rx.button("Sign out", type="submit", variant="soft", size="1"), action="/api/logout"),
        align="center",
        spacing="4",
        width="100%",
        padding="0.75em 1.5em",
        border_bottom="1px solid var(--gray-a5)",
    )


def signed_in_page(content: Callable[[], rx.Component]) -> Callable[[], rx.Component]:
    """Render a spinner until the session cookie verifies; then the nav and the page."""

    def page() -> rx.Component:
        return rx.cond(
            AuthState.signed_in & (AuthState.username != ""),
            rx.vstack(nav(), rx.box(content(), padding="1.5em", width="100%"), spacing="0", width="100%"),
            rx.center(rx.spinner(size="3"), height="100vh"),
        )

    page.__name__ = content.__name__
    return page
