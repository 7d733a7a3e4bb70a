"""Shared session state: who is signed in. Imports no page."""

from __future__ import annotations

import asyncio

import reflex as rx
from reflex.event import EventSpec

from heaters import live, routes
from heaters.auth.tokens import read_token
from heaters.auth.web import SessionUser, cookie_value, safe_next, session_user
from heaters.db import unit_of_work
from heaters.settings import get_settings


def _current_user(cookie_header: str) -> SessionUser | None:
    settings = get_settings()
    with unit_of_work() as session:
        return session_user(
            session,
            cookie_value(cookie_header),
            settings.secret_key.get_secret_value(),
            settings.session_ttl_hours * 3600,
        )


class AuthState(rx.State):
    """The HttpOnly session cookie arrives with the websocket handshake; the browser never reads it."""

    username: str = ""
    role: str = ""
    _user_id: int = 0

    @rx.var
    def signed_in(self) -> bool:
        """Gate protected content on the cookie itself, so a stale state never flashes it."""
        token = cookie_value(self.router.headers.cookie)
        if not token:  # also the frontend build's initial state, which has no configuration to read
            return False
        settings = get_settings()
        return read_token(token, settings.secret_key.get_secret_value(), settings.session_ttl_hours * 3600) is not None

    @rx.var
    def is_admin(self) -> bool:
        return self.role == "admin"

    def _requested_path(self) -> str:
        path = self.router.url.path or routes.HOME
        return f"{path}?{self.router.url.query}" if self.router.url.query else path

    async def _load_user(self) -> SessionUser | None:
        """Read the user in a thread (never on the event loop), and leave the live updates of the page
        this tab showed before: each page's own load subscribes again."""
        user = await asyncio.to_thread(_current_user, self.router.headers.cookie)
        self.username, self.role = (user.username, user.role) if user else ("", "")
        self._user_id = user.id if user else 0
        await live.hub.enter_page(self.router.session.client_token, self.router.url.path)
        return user

    async def current_user(self) -> SessionUser | None:
        """The user behind this tab's cookie right now, for any action that changes something: a user
        deactivated (or a session expired) since the page loaded gets None, not the role cached then."""
        user = await asyncio.to_thread(_current_user, self.router.headers.cookie)
        self.username, self.role = (user.username, user.role) if user else ("", "")
        self._user_id = user.id if user else 0
        return user

    @rx.event
    async def require_login(self) -> EventSpec | None:
        """on_load of every protected page: unknown, expired or deactivated users go to /login."""
        if await self._load_user() is None:
            return rx.redirect(routes.login_with_next(self._requested_path()), replace=True)
        return None

    @rx.event
    async def require_admin(self) -> EventSpec | list[EventSpec] | None:
        user = await self._load_user()
        if user is None:
            return rx.redirect(routes.login_with_next(self._requested_path()), replace=True)
        if not user.is_admin:
            return [rx.redirect(routes.HOME, replace=True), rx.toast.error("That page is for admins only.")]
        return None

    @rx.event
    async def login_on_load(self) -> EventSpec | None:
        """A signed-in user who opens /login goes straight on."""
        if await self._load_user() is not None:
            return rx.redirect(safe_next(self.router.url.query_parameters.get("next")), replace=True)
        return None
