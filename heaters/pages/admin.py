"""/admin: admins only. Accounts: add a reviewer or an admin, deactivate or reactivate, set a password.

Every change goes through `heaters.auth.service`, the one the `heaters users` commands use; each handler
checks the caller is still an active admin on the server (a page's buttons are no authority).
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx
from sqlmodel import select

from heaters.auth import service
from heaters.components.layout import signed_in_page
from heaters.db import unit_of_work
from heaters.errors import HeatersError
from heaters.models import Role, User
from heaters.state import AuthState


def _users() -> list[dict[str, str]]:
    with unit_of_work() as session:
        rows = session.exec(select(User).order_by(User.username)).all()
        return [
            {
                "username": u.username,
                "role": u.role,
                "active": "yes" if u.is_active else "no",
                "last_login": u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
            }
            for u in rows
        ]


def _create(username: str, password: str, admin: bool) -> str:
    with unit_of_work() as session:
        user = service.create_user(session, username, password, role=Role.ADMIN if admin else Role.REVIEWER)
        return f"Added {user.role} {user.username!r}."


def _set_active(username: str, active: bool) -> str:
    with unit_of_work() as session:
        user = service.set_active(session, username, active)
        return f"{'Reactivated' if active else 'Deactivated'} {user.username!r}."


def _set_password(username: str, password: str) -> str:
    with unit_of_work() as session:
        user = service.set_password(session, username, password)
        return f"Set a new password for {user.username!r}."


class AdminState(rx.State):
    users: list[dict[str, str]] = []
    message: str = ""
    message_tone: str = "green"

    async def _admin(self) -> bool:
        user = await (await self.get_state(AuthState)).current_user()  # not the role cached at page load
        return user is not None and user.is_admin

    async def _run(self, call: Any, *args: Any) -> None:
        if not await self._admin():
            self.message, self.message_tone = "Only an admin can change accounts.", "red"
            return
        try:
            self.message, self.message_tone = await asyncio.to_thread(call, *args), "green"
        except HeatersError as error:
            self.message, self.message_tone = str(error), "red"
        self.users = await asyncio.to_thread(_users)

    @rx.event
    async def load(self) -> None:
        if not await self._admin():  # never ship the list to a reviewer's state
            self.users = []
            return
        self.message = ""
        self.users = await asyncio.to_thread(_users)

    @rx.event
    async def add_user(self, form: dict[str, Any]) -> None:
        admin = str(form.get("role", "reviewer")) == "admin"
        await self._run(_create, str(form.get("username", "")).strip(), str(form.get("password", "")), admin)

    @rx.event
    async def deactivate(self, username: str) -> None:
        await self._run(_set_active, username, False)

    @rx.event
    async def reactivate(self, username: str) -> None:
        await self._run(_set_active, username, True)

    @rx.event
    async def change_password(self, form: dict[str, Any]) -> None:
        await self._run(_set_password, str(form.get("username", "")), str(form.get("password", "")))


def _add_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(name="username", placeholder="Username", required=True, id="new-username"),
            rx.input(
                name="password",
                type="password",
                placeholder="Password (8+ characters)",
                required=True,
                id="new-password",
            ),
            rx.select(["reviewer", "admin"], default_value="reviewer", name="role"),
            rx.button("Add account", type="submit", id="add-user"),
            spacing="2",
            align="center",
        ),
        on_submit=AdminState.add_user,
        reset_on_submit=True,
    )


def _row(user: Any) -> rx.Component:
    active = user["active"] == "yes"
    return rx.table.row(
        rx.table.cell(user["username"]),
        rx.table.cell(user["role"]),
        rx.table.cell(user["active"]),
        rx.table.cell(user["last_login"]),
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    active,
                    rx.button(
                        "Deactivate",
                        size="1",
                        color_scheme="red",
                        variant="soft",
                        on_click=AdminState.deactivate(user["username"]),  # type: ignore[operator]
                    ),
                    rx.button(
                        "Reactivate",
                        size="1",
                        variant="soft",
                        on_click=AdminState.reactivate(user["username"]),  # type: ignore[operator]
                    ),
                ),
                rx.form(
                    rx.hstack(
                        rx.input(type="hidden", name="username", value=user["username"]),
                        rx.input(name="password", type="password", placeholder="New password", size="1"),
                        rx.button("Set password", size="1", type="submit", variant="soft"),
                        spacing="1",
                    ),
                    on_submit=AdminState.change_password,
                    reset_on_submit=True,
                ),
                spacing="2",
            )
        ),
        custom_attrs={"data-username": user["username"]},
    )


@signed_in_page
def admin_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Admin", size="6"),
        rx.hstack(
            rx.link("Jobs", href="/admin/jobs"),
            rx.link("Dramatiq dashboard", href="/admin/dramatiq/", is_external=True),
            rx.link("Metrics", href="/metrics", is_external=True),
            spacing="4",
        ),
        rx.heading("Accounts", size="4"),
        _add_form(),
        rx.cond(
            AdminState.message != "",
            rx.callout(AdminState.message, color_scheme=AdminState.message_tone, id="admin-message"),
        ),
        rx.table.root(
            rx.table.header(
                rx.table.row(*(rx.table.column_header_cell(h) for h in ("User", "Role", "Active", "Last sign-in", "")))
            ),
            rx.table.body(rx.foreach(AdminState.users, _row)),
            id="users-table",
        ),
        spacing="4",
    )
