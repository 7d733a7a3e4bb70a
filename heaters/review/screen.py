"""The review page's database work, in two blocking steps the page runs in a thread (never on the event loop).

1. `hold`: run the reviewer's action or undo (if any), then settle the tab's queue: the clips it holds, a
   focus clip first, topped up with new leases to the configured length. One transaction.
2. `screen`: everything shown about that queue: temp clips (requested if missing), the timeline of the
   current video, the counts and the undo depth. One transaction.

The page subscribes to the queue's live topics between the two, so a temp clip that becomes ready while
step 2 runs is either seen by it or announced to the page, never missed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from heaters.adapters import get_playback_cache
from heaters.clips.repository import pending_counts
from heaters.db import unit_of_work
from heaters.playback import service as playback
from heaters.review import leases, queue, service
from heaters.review.errors import ReviewError
from heaters.review.leases import Reviewer

Action = Callable[[Session], service.ActionResult]


@dataclass(frozen=True)
class Held:
    queue: list[int]
    cards: dict[int, dict[str, Any]]
    result: service.ActionResult | None = None
    note: str = ""  # why a requested focus clip could not be opened


@dataclass(frozen=True)
class Screen:
    temp: dict[int, dict[str, str]]
    timeline: dict[str, Any] | None
    pending_total: int
    video_pending: int
    undo_depth: int


def hold(
    reviewer: Reviewer,
    *,
    current: list[int],
    want: int,
    lease_seconds: int,
    video_id: int | None = None,
    focus: int | None = None,
    run: Action | None = None,
) -> Held:
    """Run `run` (an action) and settle the queue in the same transaction; a refused action raises."""
    note = ""
    with unit_of_work() as session:
        result = run(session) if run is not None else None
        if result is not None and result.focus:
            focus = result.focus
        if focus:
            try:
                leases.take(session, reviewer, focus, lease_seconds=lease_seconds)
            except ReviewError as error:
                note, focus = str(error), None
        held = leases.held(session, reviewer.holder)
        held_set = set(held)
        order = [focus] if focus else []
        order += [c for c in current if c in held_set and c not in order]
        order += [c for c in held if c not in order]
        if len(order) < want:
            order += leases.fill(session, reviewer, want - len(order), lease_seconds=lease_seconds, video_id=video_id)
        if len(order) > want:
            leases.release(session, order[want:])
            order = order[:want]
        cards = queue.cards(session, order, reviewer.holder)
    return Held([c for c in order if c in cards], cards, result, note)


def act(
    kind: service.ReviewActionKind, clip_id: int, reviewer: Reviewer, frame: int | None, lease_seconds: int
) -> Action:
    return lambda session: service.act(session, kind, clip_id, reviewer, frame=frame, lease_seconds=lease_seconds)


def undo(reviewer: Reviewer, lease_seconds: int) -> Action:
    return lambda session: service.undo(session, reviewer, lease_seconds=lease_seconds)


def screen(
    reviewer: Reviewer,
    clip_ids: list[int],
    *,
    video_id: int | None,
    with_timeline: bool,
    shared_playback: bool,
) -> Screen:
    cache = get_playback_cache()
    # One host (web and workers share the cache directory): a ready entry whose file is gone is redone.
    exists = None if shared_playback else cache.exists
    with unit_of_work() as session:
        statuses = playback.request(session, clip_ids, file_exists=exists)
        timeline = queue.timeline(session, video_id) if video_id and with_timeline else None
        counts = pending_counts(session, video_id or 0)
        depth = service.undo_depth(session, reviewer.user_id)
    temp = {cid: {"state": s.state, "url": s.url, "error": s.error} for cid, s in statuses.items()}
    return Screen(temp, timeline, counts.total, counts.video, depth)


def retry_temp_clip(clip_id: int) -> None:
    with unit_of_work() as session:
        playback.retry(session, clip_id)


def heartbeat(holders: list[str], lease_seconds: int) -> int:
    with unit_of_work() as session:
        return leases.extend(session, holders, lease_seconds=lease_seconds)


def release(holder: str) -> list[int]:
    with unit_of_work() as session:
        return leases.release_holder(session, holder)
