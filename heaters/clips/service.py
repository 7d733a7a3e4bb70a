"""The only writer of `clips.ingest_state` (DESIGN point 2), like `videos.service` for videos.

Each change is one guarded UPDATE (`heaters.transitions`); InvalidTransition names the state the clip is
in. Callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from heaters.models import Clip, ClipState
from heaters.models.states import REVIEW_STATES
from heaters.transitions import guarded_update

C = ClipState

# to_state: the states it may be entered from.
# Review decisions move between the review states (an undo goes back the same way), and a cut operation
# (split, merge) replaces clips by archiving them; nothing re-enters review once export has started.
TRANSITIONS: dict[ClipState, frozenset[ClipState]] = {
    **{state: REVIEW_STATES | {C.ARCHIVED} for state in REVIEW_STATES},
    C.ARCHIVED: REVIEW_STATES,
}


def transition(
    session: Session,
    clip_id: int,
    to: ClipState,
    *,
    allowed_from: Iterable[ClipState] | None = None,
    **values: Any,
) -> None:
    """Move a clip to `to` (and set other columns) only from an allowed state."""
    allowed = frozenset(allowed_from) if allowed_from is not None else TRANSITIONS[to]
    if not allowed <= TRANSITIONS[to]:
        raise ValueError(f"{to.value} cannot be entered from {sorted(s.value for s in allowed - TRANSITIONS[to])}")
    guarded_update(session, Clip, "clip", clip_id, to, allowed, **values)
