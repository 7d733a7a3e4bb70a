"""/admin: admins only. Accounts now; the jobs dashboard joins it later."""

from __future__ import annotations

import asyncio

import reflex as rx
from sqlmodel import select

from heaters.components.layout import signed_in_page
from heaters.db import unit_of_work
from heaters.models import User
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


class AdminState(rx.State):
    users: list[dict[str, str]] = []

    @rx.event
    async def load(self) -> None:
        if not (await self.get_state(AuthState)).is_admin:  # never ship the list to a reviewer's state
            self.users = []
            return
        self.users = await asyncio.to_thread(_users)


@signed_in_page
def admin_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Admin", size="6"),
        rx.text("Accounts are managed with `heaters users create NAME [--admin]`.", size="2", color_scheme="gray"),
        rx.table.root(
            rx.table.header(
                rx.table.row(*(rx.table.column_header_cell(h) for h in ("User", "Role", "Active", "Last sign-in")))
            ),
            rx.table.body(
                rx.foreach(
                    AdminState.users,
                    lambda u: rx.table.row(
                        rx.table.cell(u["username"]),
                        rx.table.cell(u["role"]),
                        rx.table.cell(u["active"]),
                        rx.table.cell(u["last_login"]),
                    ),
                )
            ),
            id="users-table",
        ),
        spacing="4",
    )
