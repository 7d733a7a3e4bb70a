"""/videos: every video with its state and progress, live; ingest by URL or upload; retry (admins)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import reflex as rx

from heaters import live
from heaters.adapters import get_storage
from heaters.components.layout import signed_in_page
from heaters.db import unit_of_work
from heaters.errors import HeatersError
from heaters.pipeline.dispatch import schedule
from heaters.state import AuthState
from heaters.videos import service
from heaters.videos.ingest import ingest_file, ingest_url
from heaters.videos.repository import list_videos

UPLOAD_ID = "video-upload"
FAILED_STATES = {"download_failed", "encoding_failed", "detect_scenes_failed"}


def _row(video: dict[str, Any]) -> dict[str, Any]:
    """What the table shows: plain strings and numbers, nothing heavy."""
    clips = video["clips"]
    state = "ready" if video["ready"] else video["state"]
    tone = "ready" if video["ready"] else "failed" if video["state"] in FAILED_STATES else "working"
    return {
        "id": video["id"],
        "title": video["title"],
        "state": state,
        "tone": tone,
        "failed": video["state"] in FAILED_STATES,
        "progress": round(video["progress"]) if video["progress"] is not None else -1,
        "error": video["last_error"] or "",
        "clips": len(clips),
        "pending": sum(1 for c in clips if c["state"] == "pending_review"),
        "duration": f"{video['duration_seconds']:.1f} s" if video["duration_seconds"] else "",
    }


class VideosState(rx.State):
    videos: list[dict[str, Any]] = []
    url: str = ""
    busy: bool = False

    @rx.event
    def set_url(self, value: str) -> None:
        self.url = value

    def _reload(self) -> None:
        with unit_of_work() as session:
            self.videos = [_row(v) for v in reversed(list_videos(session))]

    @rx.event
    async def load(self) -> None:
        if not (await self.get_state(AuthState)).username:
            return
        live.watch(self.router.session.client_token)
        self._reload()

    def apply_event(self, event: dict[str, Any]) -> None:
        """Called by the live listener: progress updates in place, anything else reloads the list."""
        if event.get("type") == "video.progress":
            for video in self.videos:
                if video["id"] == event.get("video_id"):
                    video["progress"] = round(float(event.get("progress", 0)))
                    self.videos = list(self.videos)
                    return
        self._reload()

    @rx.event
    async def submit_url(self, form: dict[str, Any]) -> Any:
        if not (await self.get_state(AuthState)).username:
            return None
        try:
            with unit_of_work() as session:
                result = ingest_url(session, str(form.get("url", "")))
        except HeatersError as error:
            return rx.toast.error(str(error))
        self.url = ""
        self._reload()
        if result.created:
            return rx.toast.success(f"Video {result.video_id} queued for download.")
        return rx.toast.info(f"That URL is already video {result.video_id}.")

    @rx.event
    async def upload(self, files: list[rx.UploadFile]) -> Any:
        if not (await self.get_state(AuthState)).username:
            return None
        if not files:
            return rx.toast.error("Choose a video file first.")
        self.busy = True
        messages: list[Any] = []
        for upload in files:
            name = Path(upload.filename or "upload.mp4").name
            with tempfile.TemporaryDirectory(prefix="heaters-upload-") as tmp:
                path = Path(tmp) / name
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out, 4 * 1024 * 1024)
                try:
                    with unit_of_work() as session:
                        result = ingest_file(session, get_storage(), path, original_name=name)
                except HeatersError as error:
                    messages.append(rx.toast.error(f"{name}: {error}"))
                    continue
            note = "queued for encoding" if result.created else "was already ingested"
            messages.append(rx.toast.success(f"{name}: video {result.video_id} {note}."))
        self.busy = False
        self._reload()
        return [*messages, rx.clear_selected_files(UPLOAD_ID)]

    @rx.event
    async def retry(self, video_id: int) -> Any:
        if not (await self.get_state(AuthState)).is_admin:
            return rx.toast.error("Only admins can retry a video.")
        try:
            with unit_of_work() as session:
                stage = service.retry(session, video_id)
                schedule(session, stage, video_id)
        except HeatersError as error:
            return rx.toast.error(str(error))
        self._reload()
        return rx.toast.success(f"Video {video_id}: {stage.key} queued again.")


def _ingest_forms() -> rx.Component:
    return rx.hstack(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.text("Ingest from a URL", weight="bold"),
                    rx.el.label("Video URL", html_for="url"),
                    rx.hstack(
                        rx.input(
                            id="url",
                            name="url",
                            placeholder="https://…",
                            value=VideosState.url,
                            on_change=VideosState.set_url,
                            width="28em",
                            required=True,
                        ),
                        rx.button("Add URL", type="submit"),
                    ),
                ),
                on_submit=VideosState.submit_url,
                reset_on_submit=False,
            ),
        ),
        rx.card(
            rx.vstack(
                rx.text("Upload a file", weight="bold"),
                rx.upload(
                    rx.text("Drop a video here or click to choose", size="2"),
                    id=UPLOAD_ID,
                    multiple=True,
                    accept={"video/*": [], "audio/*": [], "image/*": []},
                    border="1px dashed var(--gray-a7)",
                    padding="1em",
                ),
                rx.hstack(
                    rx.foreach(rx.selected_files(UPLOAD_ID), lambda f: rx.badge(f)),
                    rx.button(
                        "Upload",
                        on_click=VideosState.upload(rx.upload_files(upload_id=UPLOAD_ID)),  # type: ignore[operator]
                        loading=VideosState.busy,
                    ),
                ),
            ),
        ),
        spacing="4",
        wrap="wrap",
    )


def _video_row(video: Any) -> rx.Component:
    return rx.table.row(
        rx.table.cell(video["id"]),
        rx.table.cell(video["title"]),
        rx.table.cell(
            rx.hstack(
                rx.badge(
                    video["state"], color_scheme=rx.match(video["tone"], ("ready", "green"), ("failed", "red"), "blue")
                ),
                rx.cond(video["progress"].to(int) >= 0, rx.text(video["progress"].to_string() + "%", size="1")),
            ),
            class_name="video-state",
        ),
        rx.table.cell(video["clips"]),
        rx.table.cell(video["pending"]),
        rx.table.cell(video["duration"]),
        rx.table.cell(
            rx.hstack(
                rx.text(video["error"], size="1", color_scheme="red"),
                rx.cond(
                    video["failed"].to(bool) & AuthState.is_admin,
                    rx.button("Retry", size="1", on_click=VideosState.retry(video["id"].to(int))),  # type: ignore[operator]
                ),
            )
        ),
        id=f"video-{video['id']}",
    )


@signed_in_page
def videos_page() -> rx.Component:
    return rx.vstack(
        rx.heading("Videos", size="6"),
        _ingest_forms(),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *(
                        rx.table.column_header_cell(h)
                        for h in ("#", "Title", "State", "Clips", "To review", "Length", "")
                    )
                )
            ),
            rx.table.body(rx.foreach(VideosState.videos, _video_row)),
            id="videos-table",
            width="100%",
        ),
        rx.cond(
            VideosState.videos.length() == 0,  # type: ignore[attr-defined]
            rx.text("No videos yet: add a URL or upload a file."),
        ),
        spacing="4",
        width="100%",
    )
