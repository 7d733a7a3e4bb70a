"""The frame every signed-in page shares: navigation, who is signed in, sign-out."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from heaters import routes
from heaters.components.native_form import native_form
from heaters.state import AuthState


def nav() -> rx.Component:
    return rx.hstack(
        rx.link(rx.heading("Heaters", size="5"), href=routes.HOME, underline="none"),
        rx.link("Videos", href=routes.VIDEOS),
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
