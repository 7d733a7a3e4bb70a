"""Media elements the clip pages share."""

from __future__ import annotations

from typing import Any

import reflex as rx


def hover_video(card: Any, testid: str) -> rx.Component:
    """A card's clip: its keyframe as the poster, played on hover by assets/query.js (no request until then)."""
    return rx.el.video(
        src=card["src"].to(str),
        poster=card["poster"].to(str),
        muted=True,
        loop=True,
        plays_inline=True,
        preload="none",
        class_name="query-thumb",
        custom_attrs={"data-hover-play": "1", "data-testid": testid, "data-clip-id": card["id"].to(str)},
    )
