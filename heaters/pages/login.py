"""/login: username and password, posted natively so the session cookie can be HttpOnly."""

from __future__ import annotations

import reflex as rx

from heaters.components.native_form import native_form
from heaters.state import AuthState


def _field(label: str, name: str, kind: str, autocomplete: str) -> rx.Component:
    return rx.vstack(
        rx.el.label(label, html_for=name),
        rx.input(id=name, name=name, type=kind, required=True, auto_complete=autocomplete, width="100%"),
        spacing="1",
        width="100%",
    )


def login_page() -> rx.Component:
    query = AuthState.router.url.query_parameters
    return rx.center(
        rx.card(
            native_form(
                rx.vstack(
                    rx.heading("Sign in to Heaters", size="6"),
                    _field("Username", "username", "text", "username"),
                    _field("Password", "password", "password", "current-password"),
                    rx.cond(
                        query["error"] == "1",
                        rx.callout(
                            "Wrong username or password.",
                            color_scheme="red",
                            role="alert",
                            icon="triangle_alert",
                        ),
                    ),
                    rx.el.input(type="hidden", name="next", value=query["next"].to(str)),
                    rx.button("Sign in", type="submit", width="100%"),
                    spacing="3",
                ),
                action="/api/login",
            ),
            width="22em",
        ),
        height="100vh",
    )
