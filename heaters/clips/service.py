"""The only writer of `clips.ingest_state` (DESIGN point 2), like `videos.service` for videos.

Each change is one UPDATE whose WHERE clause checks the current state; zero rows means the clip was not
in an allowed state, reported as InvalidTransition. Callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from heaters.errors import InvalidTransition
from heaters.models import Clip, ClipState
from heaters.models.states import REVIEW_STATES

C = ClipState

# to_state: the states it may be entered from.
# Review decisions move between the review states (an undo goes back the same way), and a cut operation
# (split, merge) replaces clips by archiving them; nothing re-enters review once export has started.
TRANSITIONS: dict[ClipState, frozenset[ClipState]] = {
    **{state: REVIEW_STATES | {C.ARCHIVED} for state in REVIEW_STATES},
    C.ARCHIVED: REVIEW_STATES,
}


def current_state(session: Session, clip_id: int) -> str | None:
    clip = session.get(Clip, clip_id, populate_existing=True)
    return clip.ingest_state if clip else None


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
    result = session.execute(
        update(Clip)
        .where(Clip.id == clip_id)  # type: ignore[arg-type]
        .where(Clip.ingest_state.in_([s.value for s in allowed]))  # type: ignore[attr-defined]
        .values(ingest_state=to.value, **values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition("clip", clip_id, to.value, current_state(session, clip_id))
