"""Pure review rules: when merge, group and split are possible, and how new clips are named. No I/O."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from heaters.models.states import REVIEW_STATES


@dataclass(frozen=True)
class Neighbour:
    """The live clip that ends where the current one starts, as the rules need to see it."""

    id: int
    state: str
    held_by_other: bool
    grouped_with: int | None


def _preceding_problem(start_frame: int, preceding: Neighbour | None) -> str | None:
    if start_frame == 0 or preceding is None:
        return "No preceding clip in this video."
    if preceding.state not in REVIEW_STATES:
        return f"The preceding clip {preceding.id} has moved past review ({preceding.state})."
    if preceding.held_by_other:
        return f"The preceding clip {preceding.id} is being reviewed by someone else."
    return None


def merge_problem(start_frame: int, preceding: Neighbour | None, *, cut_exists: bool) -> str | None:
    """Why the current clip cannot merge with the one before it, or None when it can."""
    problem = _preceding_problem(start_frame, preceding)
    if problem:
        return problem
    assert preceding is not None
    if preceding.grouped_with is not None:
        return f"The preceding clip {preceding.id} is grouped with clip {preceding.grouped_with}; undo the group first."
    if not cut_exists:
        return f"There is no cut at frame {start_frame} to remove."
    return None


def group_problem(start_frame: int, preceding: Neighbour | None) -> str | None:
    """Why the current clip cannot be grouped with the one before it, or None when it can."""
    problem = _preceding_problem(start_frame, preceding)
    if problem:
        return problem
    assert preceding is not None
    if preceding.grouped_with is not None:
        return f"The preceding clip {preceding.id} is already grouped with clip {preceding.grouped_with}."
    return None


def split_problem(start_frame: int, end_frame: int, frame: int) -> str | None:
    """A split at `frame` makes [start, frame) and [frame, end): both need at least one frame."""
    if frame == start_frame:
        return f"Frame {frame:,} is the clip's first frame: step at least one frame in to split."
    if not start_frame < frame < end_frame:
        return f"Frame {frame:,} is outside this clip (frames {start_frame:,} to {end_frame - 1:,})."
    return None


def new_identifier(video_id: int, kind: str, start_frame: int, end_frame: int) -> str:
    """Unique for ever: archived clips keep their names, and the same range can be made again later."""
    return f"{video_id}_{kind}_{start_frame}_{end_frame}_{secrets.token_hex(3)}"
