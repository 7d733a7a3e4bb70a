"""The review page's parts: the player pool, what the clip is, the actions, the context strip, the timeline."""

from __future__ import annotations

from typing import Any

import reflex as rx

from heaters import routes
from heaters.components.progress import ingest_bar
from heaters.pages.review.keys import review_keys
from heaters.pages.review.state import ReviewState

KEYS: list[tuple[str, str]] = [
    ("A", "Approve"),
    ("S", "Skip"),
    ("D", "Archive (reject)"),
    ("M", "Merge with the previous clip"),
    ("G", "Group with the previous clip"),
    ("← / →", "Step one frame (the first press pauses and enters split mode)"),
    ("Shift + ← / →", "Step ten frames"),
    ("Enter", "Split at the frame on screen (in split mode)"),
    ("Esc", "Leave split mode"),
    ("Space", "Play / pause"),
    ("[ / ]", "Slower / faster (0.25× to 4×)"),
    ("Ctrl/⌘ + Z", "Undo (several levels; also after a reload)"),
    ("?", "Show or hide this list"),
]


def _script(js: str) -> Any:
    return rx.call_script(f"window.heatersReview && window.heatersReview.{js}")


def _player(slot: Any, index: Any) -> rx.Component:
    """One preloading <video> per queued clip; only the current one is shown and carries data-testid=player."""
    current = ReviewState.current_slot == index
    return rx.el.video(
        src=slot["url"].to(str),
        preload="auto",
        muted=True,
        plays_inline=True,
        loop=True,
        class_name="review-video",
        custom_attrs={
            "data-testid": rx.cond(current, "player", "prefetch"),
            "data-clip-id": slot["clip_id"].to(str),
            "data-start-frame": slot["start_frame"].to(str),
            "data-end-frame": slot["end_frame"].to(str),
            "data-fps-num": slot["fps_num"].to(str),
            "data-fps-den": slot["fps_den"].to(str),
        },
        style={"display": rx.cond(current & (slot["status"].to(str) == "ready"), "block", "none")},
    )


def _player_status() -> rx.Component:
    status = ReviewState.current["status"].to(str)
    return rx.cond(
        status == "failed",
        rx.callout(
            rx.vstack(
                rx.text("This clip could not be prepared for playback: ", ReviewState.current["error"].to(str)),
                rx.button(
                    "Retry",
                    size="1",
                    on_click=ReviewState.retry_temp_clip(ReviewState.current["id"].to(int)),  # type: ignore[operator]
                ),
            ),
            color_scheme="red",
            id="temp-clip-error",
        ),
        rx.cond(
            status != "ready",
            rx.center(rx.hstack(rx.spinner(), rx.text("Preparing the clip…")), class_name="review-waiting"),
        ),
    )


def _player_area() -> rx.Component:
    return rx.box(
        rx.foreach(ReviewState.slots, _player),
        _player_status(),
        rx.hstack(
            rx.el.span(custom_attrs={"data-testid": "current-frame"}, class_name="review-frame"),
            rx.el.span(custom_attrs={"data-testid": "clip-frame"}, class_name="review-muted"),
            rx.spacer(),
            rx.el.span("1×", custom_attrs={"data-testid": "speed"}, class_name="review-muted"),
            rx.button("Sound", size="1", variant="ghost", on_click=_script("toggleMute()")),
            width="100%",
            align="center",
            padding_top="0.25em",
        ),
        rx.text(
            "Split mode: ← / → step, Enter splits at this frame, Esc cancels.",
            class_name="review-split-hint",
            size="2",
        ),
        class_name="review-player",
        width="100%",
    )


def _key_button(label: str, key: str, on_click: Any, **props: Any) -> rx.Component:
    return rx.button(label, rx.el.kbd(key, class_name="review-key"), on_click=on_click, **props)


def _actions() -> rx.Component:
    merge_problem = ReviewState.current["merge_problem"].to(str)
    group_problem = ReviewState.current["group_problem"].to(str)
    return rx.hstack(
        _key_button(
            "Undo",
            "Ctrl+Z",
            _script("command('undo')"),
            variant="soft",
            color_scheme="gray",
            disabled=ReviewState.undo_depth == 0,
        ),
        _key_button("Approve", "A", _script("command('approve')"), color_scheme="green"),
        _key_button("Skip", "S", _script("command('skip')"), color_scheme="gray"),
        _key_button("Archive", "D", _script("command('archive')"), color_scheme="red"),
        rx.tooltip(
            _key_button("Merge", "M", _script("command('merge')"), color_scheme="blue", disabled=merge_problem != ""),
            content=rx.cond(merge_problem != "", merge_problem, "Merge with the previous clip"),
        ),
        rx.tooltip(
            _key_button("Group", "G", _script("command('group')"), color_scheme="orange", disabled=group_problem != ""),
            content=rx.cond(group_problem != "", group_problem, "Group with the previous clip"),
        ),
        _key_button(
            "Split",
            "←/→ Enter",
            _script("split ? window.heatersReview.command('split') : window.heatersReview.enterSplit()"),
            color_scheme="yellow",
            variant="soft",
        ),
        rx.spacer(),
        rx.button(
            "Keys", rx.el.kbd("?", class_name="review-key"), variant="ghost", on_click=_script("command('help')")
        ),
        wrap="wrap",
        width="100%",
        spacing="2",
    )


def _about() -> rx.Component:
    clip = ReviewState.current
    return rx.hstack(
        rx.vstack(
            rx.heading(clip["title"].to(str), size="5", id="review-title"),
            rx.hstack(
                rx.badge(
                    "Clip ",
                    clip["position"].to(str),
                    " of ",
                    clip["clip_total"].to(str),
                    " in this video",
                    id="review-position",
                ),
                rx.text(
                    "#",
                    clip["id"].to(str),
                    " · frames ",
                    clip["start_frame"].to(str),
                    "–",
                    (clip["end_frame"].to(int) - 1).to(str),
                    " · ",
                    clip["frames"].to(str),
                    " frames · ",
                    clip["duration"].to(str),
                    size="2",
                    id="review-frames",
                ),
                rx.link(
                    "Find similar",
                    href="/query?clip=" + clip["id"].to(str),
                    is_external=True,  # a new tab: the review queue stays where it is
                    size="2",
                    id="review-find-similar",
                ),
                align="center",
            ),
            _ingest(),
            spacing="1",
            align="start",
        ),
        rx.spacer(),
        _counts(),
        width="100%",
        align="end",
    )


def _ingest() -> rx.Component:
    """While the video is still encoded in chunks: how far, and that more clips will join the queue."""
    return rx.cond(
        ReviewState.ingest["active"].to(bool),
        rx.hstack(
            rx.text("Still encoding", size="1", weight="medium"),
            ingest_bar(ReviewState.ingest, width="12em", inline=True),
            align="center",
            spacing="2",
            wrap="wrap",
            id="review-ingest",
            title="The video is still being encoded and scanned: its new clips join the queue as they are cut.",
        ),
    )


def _counts() -> rx.Component:
    return rx.text(
        rx.text.strong(ReviewState.video_pending, id="video-pending"),
        " to review in this video · ",
        rx.text.strong(ReviewState.pending_total, id="pending-total"),
        " overall",
        size="2",
        white_space="nowrap",
        id="review-counts",
    )


def _neighbour(title: str, url: Any, testid: str) -> rx.Component:
    return rx.vstack(
        rx.text(title, size="1", class_name="review-muted"),
        rx.cond(
            url != "",
            rx.el.video(
                src=url,
                preload="auto",
                muted=True,
                plays_inline=True,
                class_name="review-neighbour",
                custom_attrs={"data-testid": testid},
            ),
            rx.center(rx.text("none", size="1", class_name="review-muted"), class_name="review-neighbour"),
        ),
        spacing="1",
        align="center",
    )


def _score(label: str, value: Any) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", class_name="review-muted"),
        rx.badge(rx.cond(value != "", value, "—"), variant="outline", size="2"),
        spacing="1",
        align="center",
    )


def _context() -> rx.Component:
    clip = ReviewState.current
    return rx.hstack(
        _neighbour("Previous clip (last frame)", ReviewState.prev_url, "previous-clip"),
        _score("Cut score at start", clip["start_score"].to(str)),
        rx.spacer(),
        _score("Cut score at end", clip["end_score"].to(str)),
        _neighbour("Next clip (first frame)", ReviewState.next_url, "next-clip"),
        width="100%",
        align="center",
        id="review-context",
    )


def _timeline() -> rx.Component:
    """Drawn by assets/review.js from one JSON string: a long video has hundreds of clips, and a change
    to one of them then sends one string instead of every segment's props."""
    return rx.vstack(
        rx.text(
            "This video: every clip, coloured by state; cuts sized by score. Click a waiting clip to open it.",
            size="1",
            class_name="review-muted",
        ),
        rx.el.div(
            class_name="review-timeline",
            id="timeline",
            custom_attrs={"data-timeline": ReviewState.timeline, "data-current": ReviewState.current_id},
        ),
        width="100%",
        spacing="1",
    )


def _message() -> rx.Component:
    return rx.cond(
        ReviewState.message != "",
        rx.callout(
            ReviewState.message,
            color_scheme=rx.match(ReviewState.message_tone, ("red", "red"), ("green", "green"), "gray"),
            size="2",
            id="review-message",
            role="status",
            class_name="review-message",
        ),
    )


def _reviewing() -> rx.Component:
    return rx.vstack(_about(), _player_area(), _actions(), _context(), _timeline(), width="100%", spacing="3")


def _empty() -> rx.Component:
    return rx.vstack(
        rx.heading("All clips reviewed", size="6", id="review-empty"),
        rx.text(
            rx.cond(
                ReviewState.video_filter > 0,
                "No clip of this video is waiting for review.",
                "Nothing is waiting for review. New clips appear here as soon as videos are cut.",
            ),
            " ",
            rx.link("Videos", href=routes.VIDEOS),
        ),
        _key_button("Undo", "Ctrl+Z", _script("command('undo')"), variant="soft", disabled=ReviewState.undo_depth == 0),
        _counts(),
        _ingest(),
        rx.cond(ReviewState.timeline != "", _timeline()),
        spacing="3",
        width="100%",
    )


def _help() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Keyboard"),
            rx.table.root(
                rx.table.body(
                    *(
                        rx.table.row(rx.table.cell(rx.el.kbd(key, class_name="review-key")), rx.table.cell(what))
                        for key, what in KEYS
                    )
                ),
                size="1",
            ),
            rx.dialog.close(rx.button("Close", variant="soft", on_click=ReviewState.close_help)),
            id="review-help",
        ),
        open=ReviewState.show_help,
    )


def review_body() -> rx.Component:
    return rx.box(
        review_keys(on_command=ReviewState.command),
        rx.script(src="/review.js"),
        _message(),
        rx.cond(
            ReviewState.loaded,
            rx.cond(ReviewState.current_slot >= 0, _reviewing(), _empty()),
            rx.center(rx.spinner(size="3"), height="40vh"),
        ),
        _help(),
        width="100%",
        max_width="1100px",
        custom_attrs={"data-review-page": "1"},
    )
