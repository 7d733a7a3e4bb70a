"""/admin/jobs (admins only), live: queues with pause/resume, workers, running work, failures with Retry,
dead letters with requeue and delete,
the schedule. Everything goes through `heaters.job_board`, which `heaters jobs` uses too."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from heaters import dead_letters, job_board, live, queue_control
from heaters.adapters import get_redis
from heaters.components.layout import signed_in_page
from heaters.db import unit_of_work
from heaters.errors import HeatersError
from heaters.queues import queue_named
from heaters.settings import get_settings
from heaters.state import AuthState

JOBS_ROUTE = "/admin/jobs"
STAGE_TOPIC = "stages"
QUEUE_COLUMNS = ["queue", "ready", "delayed", "dead", "paused"]
RUNNING_COLUMNS = ["stage", "entity_id", "worker", "attempt", "lease_until"]


def _board() -> dict[str, Any]:
    with unit_of_work() as session:
        board = job_board.board(session, get_redis(), get_settings())
    # Plain strings for the table cells (Reflex vars), nothing heavy.
    return {section: [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
            for section, rows in board.items()}  # fmt: skip


def _retry(stage: str, entity_id: int) -> str:
    with unit_of_work() as session:
        again = job_board.retry(session, stage, entity_id)
    return f"{again.key} {entity_id} queued again."


def _pause(queue: str, paused: bool) -> str:
    redis = get_redis()
    (queue_control.pause if paused else queue_control.resume)(redis, queue_named(queue))
    return f"Queue {queue} {'paused' if paused else 'resumed'}."


def _requeue(queue: str, message_id: str | None) -> str:
    sent = dead_letters.requeue(get_redis(), queue_named(queue), message_id)
    return f"{sent} dead-lettered message(s) of {queue} queued again."


def _delete(queue: str, message_id: str) -> str:
    dropped = dead_letters.delete(get_redis(), queue_named(queue), message_id)
    return f"{dropped} dead-lettered message(s) of {queue} deleted."


class JobsState(rx.State):
    queues: list[dict[str, str]] = []
    workers: list[dict[str, str]] = []
    running: list[dict[str, str]] = []
    failures: list[dict[str, str]] = []
    ticks: list[dict[str, str]] = []
    dead: list[dict[str, str]] = []
    message: str = ""

    async def _admin(self) -> bool:
        user = await (await self.get_state(AuthState)).current_user()  # not the role cached at page load
        return user is not None and user.is_admin

    async def _refresh(self) -> None:
        board = await asyncio.to_thread(_board)
        self.queues, self.workers, self.running = board["queues"], board["workers"], board["running"]
        self.failures, self.ticks, self.dead = board["failures"], board["ticks"], board["dead"]

    @rx.event
    async def load(self) -> None:
        if not await self._admin():
            return
        live.hub.watch(self.router.session.client_token, JobsState, [STAGE_TOPIC])
        self.message = ""
        await self._refresh()

    @rx.event
    async def refresh(self) -> None:
        if await self._admin():
            await self._refresh()

    async def _act(self, call: Any, *args: Any) -> None:
        if not await self._admin():
            self.message = "Only an admin can do that."
            return
        try:
            self.message = await asyncio.to_thread(call, *args)
        except HeatersError as error:
            self.message = str(error)
        await self._refresh()

    @rx.event
    async def retry(self, stage: str, entity_id: str) -> None:
        await self._act(_retry, stage, int(entity_id))

    @rx.event
    async def requeue_all(self, queue: str) -> None:
        await self._act(_requeue, queue, None)

    @rx.event
    async def requeue(self, queue: str, message_id: str) -> None:
        await self._act(_requeue, queue, message_id)

    @rx.event
    async def delete(self, queue: str, message_id: str) -> None:
        await self._act(_delete, queue, message_id)

    @rx.event
    async def pause(self, queue: str) -> None:
        await self._act(_pause, queue, True)

    @rx.event
    async def resume(self, queue: str) -> None:
        await self._act(_pause, queue, False)

    def apply_events(self, batch: list[dict[str, Any]]) -> bool:
        """A stage started, finished or failed somewhere: read the board again (once per batch)."""
        return any(str(event.get("type", "")).startswith("stage.") for event in batch)

    @classmethod
    async def live_reload(cls, app: rx.App, token: str) -> None:
        async with app.modify_state(rx.BaseStateToken(ident=token, cls=cls)) as root:
            state = await root.get_state(cls)
            await state._refresh()


def _table(title: str, rows: Any, columns: list[str], testid: str, action: Any = None) -> rx.Component:
    headers = [*columns, ""] if action is not None else columns
    return rx.vstack(
        rx.heading(title, size="3"),
        rx.table.root(
            rx.table.header(rx.table.row(*(rx.table.column_header_cell(c) for c in headers))),
            rx.table.body(
                rx.foreach(
                    rows,
                    lambda row: rx.table.row(
                        *(rx.table.cell(row[c]) for c in columns),
                        *([rx.table.cell(action(row))] if action is not None else []),
                    ),
                )
            ),
            size="1",
            custom_attrs={"data-testid": testid},
        ),
        spacing="1",
        width="100%",
    )


def _queue_buttons(row: Any) -> rx.Component:
    return rx.hstack(
        rx.cond(
            row["paused"] == "True",
            rx.button("Resume", size="1", on_click=JobsState.resume(row["queue"])),  # type: ignore[operator]
            rx.button("Pause", size="1", variant="soft", on_click=JobsState.pause(row["queue"])),  # type: ignore[operator]
        ),
        rx.cond(
            row["dead"] != "0",
            rx.button(
                "Requeue dead",
                size="1",
                variant="soft",
                on_click=JobsState.requeue_all(row["queue"]),  # type: ignore[operator]
            ),
        ),
        spacing="2",
    )


def _dead_buttons(row: Any) -> rx.Component:
    return rx.hstack(
        rx.button("Requeue", size="1", on_click=JobsState.requeue(row["queue"], row["id"])),  # type: ignore[operator]
        rx.button(
            "Delete",
            size="1",
            color_scheme="red",
            variant="soft",
            on_click=JobsState.delete(row["queue"], row["id"]),  # type: ignore[operator]
        ),
        spacing="2",
    )


def _retry_button(row: Any) -> rx.Component:
    return rx.cond(
        row["state"] == "failed",
        rx.button("Retry", size="1", on_click=JobsState.retry(row["stage"], row["entity_id"])),  # type: ignore[operator]
    )


@signed_in_page
def jobs_page() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Jobs", size="6"),
            rx.button("Refresh", size="1", variant="soft", on_click=JobsState.refresh),
            rx.link("Dramatiq dashboard (every message)", href="/admin/dramatiq/", is_external=True),
            spacing="4",
            align="center",
        ),
        rx.cond(JobsState.message != "", rx.callout(JobsState.message, id="jobs-message")),
        _table(
            "Queues", JobsState.queues, ["queue", "ready", "delayed", "dead", "paused"], "jobs-queues", _queue_buttons
        ),
        _table("Workers", JobsState.workers, ["worker", "seen_seconds_ago", "alive"], "jobs-workers"),
        _table(
            "Running", JobsState.running, ["stage", "entity_id", "worker", "attempt", "lease_until"], "jobs-running"
        ),
        _table(
            "Failures and retries",
            JobsState.failures,
            ["stage", "entity_id", "state", "attempts", "error", "next_attempt_at"],
            "jobs-failures",
            _retry_button,
        ),
        _table("Schedule", JobsState.ticks, ["job", "cron", "last_run", "next_run"], "jobs-ticks"),
        _table(
            "Dead letters (newest first)",
            JobsState.dead,
            ["queue", "id", "actor", "args", "dead_since"],
            "jobs-dead",
            _dead_buttons,
        ),
        spacing="5",
        width="100%",
        max_width="1200px",
    )
