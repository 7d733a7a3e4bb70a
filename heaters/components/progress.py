"""How far a video's chunked ingest has got: chunks encoded, the part scanned, the clips released so far.

`ingest_view` shapes a video summary (heaters.videos.repository: `chunks_encoded`, `chunks_total`,
`scanned_percent`, `scanning`, `released_clips`) into the plain strings and numbers `ingest_bar` draws,
so a page's state holds a few short values per video and the browser does no arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import reflex as rx

NO_INGEST: dict[str, Any] = {
    "active": False,
    "video_id": 0,
    "encoded": 0,
    "total": 0,
    "chunks": "",
    "chunks_percent": 0.0,
    "scanned_percent": 0.0,
    "scanned": "",
    "clips": "",
    "released": 0,
}


def ingest_view(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the bar shows of one video; inactive for a single-pass encode and once the video is ready."""
    total = int(summary.get("chunks_total") or 0) if summary else 0
    if summary is None or total <= 0 or summary.get("ready"):
        return {**NO_INGEST, "video_id": int(summary.get("id") or 0) if summary else 0}
    encoded = min(total, int(summary.get("chunks_encoded") or 0))
    scanning = bool(summary.get("scanning"))
    scanned = float(summary.get("scanned_percent") or 0.0) if scanning else 100.0
    released = int(summary.get("released_clips") or 0)
    return {
        "active": True,
        "video_id": int(summary.get("id") or 0),
        "encoded": encoded,
        "total": total,
        "chunks": f"{encoded}/{total} chunks encoded",
        "chunks_percent": round(100.0 * encoded / total, 1),
        "scanned_percent": round(min(100.0, max(0.0, scanned)), 1),
        "scanned": f"{scanned:g}% scanned" if scanning else "scan complete",
        "clips": f"{released} clip{'' if released == 1 else 's'} ready",
        "released": released,
    }


def ingest_bar(view: Any, *, width: str = "14em", inline: bool = False, **props: Any) -> rx.Component:
    """A thin two-layer bar (pale: chunks encoded, solid: the part scanned into clips) and its numbers,
    under the bar or (`inline`) beside it.

    `view` is a Var holding an `ingest_view` dict; render it under `rx.cond(view["active"], ...)`.
    """
    data = view.to(dict)
    return rx.flex(
        rx.box(
            rx.box(
                class_name="ingest-encoded",
                position="absolute",
                left="0",
                top="0",
                height="100%",
                width=data["chunks_percent"].to(str) + "%",
                background="var(--blue-a5)",
                transition="width 0.3s",
            ),
            rx.box(
                class_name="ingest-scanned",
                position="absolute",
                left="0",
                top="0",
                height="100%",
                width=data["scanned_percent"].to(str) + "%",
                background="var(--blue-9)",
                transition="width 0.3s",
            ),
            position="relative",
            width=width,
            max_width="100%",
            height="6px",
            border_radius="3px",
            overflow="hidden",
            background="var(--gray-a4)",
            custom_attrs={
                "role": "progressbar",
                "aria-label": "Chunks encoded",
                "aria-valuemin": "0",
                "aria-valuemax": data["total"].to(str),
                "aria-valuenow": data["encoded"].to(str),
                "aria-valuetext": data["chunks"].to(str),
            },
        ),
        rx.text(
            rx.el.span(data["chunks"].to(str), class_name="ingest-chunks"),
            " · ",
            rx.el.span(data["scanned"].to(str), class_name="ingest-scanned-text"),
            " · ",
            rx.el.span(data["clips"].to(str), class_name="ingest-clips"),
            size="1",
            color_scheme="gray",
            style={"fontVariantNumeric": "tabular-nums"},
        ),
        direction="row" if inline else "column",
        align="center" if inline else "start",
        spacing="2" if inline else "1",
        wrap="wrap",
        class_name="ingest-progress",
        **props,
    )
