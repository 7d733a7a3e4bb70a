"""/videos: every video with its state and progress, live; ingest by URL or upload; retry (admins)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import reflex as rx

from heaters import events, live
from heaters.adapters import get_storage
from heaters.components.layout import signed_in_page
from heaters.components.progress import ingest_bar, ingest_view
from heaters.db import unit_of_work
from heaters.errors import HeatersError, NotFound
from heaters.models import ClipState, VideoState
from heaters.pipeline.dispatch import schedule
from heaters.pipeline.stages import FAILED_STATE
from heaters.state import AuthState
from heaters.videos import service
from heaters.videos.ingest import ingest_file, ingest_url
from heaters.videos.repository import list_videos, show_video

UPLOAD_ID = "video-upload"
FAILED_STATES = frozenset(s.value for s in FAILED_STATE.values() if isinstance(s, VideoState))


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
        "clips": sum(1 for c in clips if c["state"] != ClipState.ARCHIVED),  # archived: replaced by a split or merge
        "pending": sum(1 for c in clips if c["state"] == ClipState.PENDING_REVIEW),
        "duration": f"{video['duration_seconds']:.1f} s" if video["duration_seconds"] else "",
        # A chunked encode: chunks done / total, the part scanned, the clips out so far (inactive otherwise).
        "ingest": ingest_view(video),
    }


def _rows() -> list[dict[str, Any]]:
    with unit_of_work() as session:
        return [_row(v) for v in reversed(list_videos(session))]


def _row_for(video_id: int) -> dict[str, Any] | None:
    with unit_of_work() as session:
        try:
            return _row(show_video(session, video_id))
        except NotFound:
            return None


def _keep_uploads(files: list[rx.UploadFile]) -> tuple[Path, list[Path]]:
    """Copy the request's files to a directory of our own, which outlives the upload request."""
    folder = Path(tempfile.mkdtemp(prefix="heaters-upload-"))
    paths = []
    for index, upload in enumerate(files):
        name = Path(upload.filename or "upload.mp4").name or "upload.mp4"
        path = folder / str(index) / name
        path.parent.mkdir()
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 4 * 1024 * 1024)
        paths.append(path)
    return folder, paths


def _ingest(path: Path) -> tuple[int, bool]:
    """Hash, upload to S3 (verified), insert and queue: minutes for a large file, so never on the loop."""
    with unit_of_work() as session:
        result = ingest_file(session, get_storage(), path, original_name=path.name)
    return result.video_id, result.created


def _submit_url(url: str) -> tuple[int, bool]:
    with unit_of_work() as session:
        result = ingest_url(session, url)
    return result.video_id, result.created


def _retry(video_id: int) -> str:
    with unit_of_work() as session:
        stage = service.retry(session, video_id)
        schedule(session, stage, video_id)
    return stage.key


class VideosState(rx.State):
    videos: list[dict[str, Any]] = []
    url: str = ""
    busy: bool = False
    _uploads: list[tuple[str, list[str]]] = []  # backend only: this tab's copied uploads, not yet ingested

    @rx.event
    def set_url(self, value: str) -> None:
        self.url = value

    @rx.event
    async def load(self) -> None:
        if not (await self.get_state(AuthState)).username:
            return
        live.hub.watch(self.router.session.client_token, VideosState, [events.VIDEOS])
        self.videos = await asyncio.to_thread(_rows)

    @classmethod
    def live_prepare(cls, event: dict[str, Any]) -> dict[str, Any] | None:
        """Once per web process and event (never per tab): the changed video's row as the table shows it."""
        if event.get("type") == "video.progress":
            return event
        video_id = event.get("video_id") or event.get("entity_id")
        if not video_id:
            return None
        return {**event, "video_id": int(video_id), "row": _row_for(int(video_id))}

    def apply_events(self, batch: list[dict[str, Any]]) -> bool:
        """Progress in place; any other change replaces its video's row with the one the event carries."""
        rows = {video["id"]: video for video in self.videos}
        order = [video["id"] for video in self.videos]
        for event in batch:
            video_id = event.get("video_id")
            if event.get("type") == "video.progress" and video_id in rows:
                rows[video_id] = {**rows[video_id], "progress": round(float(event.get("progress", 0)))}
            elif "row" in event:
                if event["row"] is None:
                    rows.pop(video_id, None)
                    continue
                if video_id not in rows:
                    order.insert(0, video_id)
                rows[video_id] = event["row"]
        self.videos = [rows[i] for i in order if i in rows]
        return False

    @rx.event
    async def submit_url(self, form: dict[str, Any]) -> Any:
        if not (await self.get_state(AuthState)).username:
            return None
        try:
            video_id, created = await asyncio.to_thread(_submit_url, str(form.get("url", "")))
        except HeatersError as error:
            return rx.toast.error(str(error))
        self.url = ""
        self.videos = await asyncio.to_thread(_rows)
        if created:
            return rx.toast.success(f"Video {video_id} queued for download.")
        return rx.toast.info(f"That URL is already video {video_id}.")

    @rx.event
    async def upload(self, files: list[rx.UploadFile]) -> AsyncIterator[Any]:
        """Take the files off the request (a disk copy, in a thread); the slow part runs as a background
        event, so neither this tab's state nor any other tab waits for the hashing and the S3 upload."""
        if not (await self.get_state(AuthState)).username:
            return
        if not files:
            yield rx.toast.error("Choose a video file first.")
            return
        self.busy = True
        yield
        folder, paths = await asyncio.to_thread(_keep_uploads, files)
        # The folder stays on the server: an event argument would come back from the browser, and anyone
        # could then name any directory to remove or any file to ingest.
        self._uploads.append((str(folder), [str(p) for p in paths]))
        yield VideosState.ingest_uploads

    @rx.event(background=True)
    async def ingest_uploads(self) -> Any:
        async with self:
            if not self._uploads:
                return None
            folder, paths = self._uploads.pop(0)
        messages: list[Any] = []
        try:
            for raw in paths:
                path = Path(raw)
                try:
                    video_id, created = await asyncio.to_thread(_ingest, path)
                except HeatersError as error:
                    messages.append(rx.toast.error(f"{path.name}: {error}"))
                    continue
                note = "queued for encoding" if created else "was already ingested"
                messages.append(rx.toast.success(f"{path.name}: video {video_id} {note}."))
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        rows = await asyncio.to_thread(_rows)
        async with self:
            self.busy = False
            self.videos = rows
        return [*messages, rx.clear_selected_files(UPLOAD_ID)]

    @rx.event
    async def retry(self, video_id: int) -> Any:
        user = await (await self.get_state(AuthState)).current_user()
        if user is None or not user.is_admin:
            return rx.toast.error("Only admins can retry a video.")
        try:
            stage = await asyncio.to_thread(_retry, video_id)
        except HeatersError as error:
            return rx.toast.error(str(error))
        self.videos = await asyncio.to_thread(_rows)
        return rx.toast.success(f"Video {video_id}: {stage} queued again.")


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
                rx.cond(
                    (video["progress"].to(int) >= 0) & ~video["ingest"].to(dict)["active"].to(bool),
                    rx.text(video["progress"].to_string() + "%", size="1"),
                ),
            ),
            rx.cond(video["ingest"].to(dict)["active"].to(bool), ingest_bar(video["ingest"], margin_top="0.35em")),
            class_name="video-state",
        ),
        rx.table.cell(video["clips"]),
        rx.table.cell(
            rx.cond(
                video["pending"].to(int) > 0,
                rx.link(video["pending"].to(str), " → review", href="/review?video=" + video["id"].to(str)),
                video["pending"].to(str),
            )
        ),
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
