"""Which `<video>` element shows which queued clip. Pure.

The page keeps a fixed row of video elements, one per queued clip, each preloading its temp clip. A clip
keeps its element while it stays queued, so becoming the current clip is only a matter of showing an
element that has already loaded: no new request, no reload.
"""

from __future__ import annotations

from collections.abc import Sequence

EMPTY = 0


def assign(previous: Sequence[int], queue: Sequence[int], size: int) -> list[int]:
    """New slot contents: clips still queued stay where they were; new ones take the free slots in order."""
    if size < 1:
        raise ValueError("need at least one slot")
    wanted = list(dict.fromkeys(queue))[:size]
    slots, seen = [], set()
    for clip in list(previous)[:size]:
        keep = clip in wanted and clip not in seen
        slots.append(clip if keep else EMPTY)
        seen.add(clip)
    slots += [EMPTY] * (size - len(slots))
    placed = set(slots) - {EMPTY}
    free = (i for i, c in enumerate(slots) if c == EMPTY)
    for clip in wanted:
        if clip not in placed:
            slots[next(free)] = clip
    return slots
