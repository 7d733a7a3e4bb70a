"""The only writer of `clips.ingest_state` (DESIGN point 2), like `videos.service` for videos.

Each change is one guarded UPDATE (`heaters.transitions`); InvalidTransition names the state the clip is
in. Callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from heaters.errors import InvalidTransition, NotFound
from heaters.models import Clip, ClipState
from heaters.models.states import REVIEW_STATES
from heaters.pipeline import claims
from heaters.pipeline.stages import Stage
from heaters.transitions import guarded_update

C = ClipState

# to_state: the states it may be entered from.
# Review decisions move between the review states (an undo goes back the same way), and a cut operation
# (split, merge) replaces clips by archiving them; nothing re-enters review once export has started.
# After review each stage enters its running state from the previous stage's result (or from itself: a
# resumed run), and its result or failure state from there; a retry of a failure goes back to the start.
TRANSITIONS: dict[ClipState, frozenset[ClipState]] = {
    **{state: REVIEW_STATES | {C.ARCHIVED} for state in REVIEW_STATES},
    C.ARCHIVED: REVIEW_STATES,
    C.EXPORTING: frozenset({C.REVIEW_APPROVED, C.EXPORTING}),
    C.EXPORTED: frozenset({C.EXPORTING}),
    C.EXPORT_FAILED: frozenset({C.REVIEW_APPROVED, C.EXPORTING}),
    C.KEYFRAMING: frozenset({C.EXPORTED, C.KEYFRAMING}),
    C.KEYFRAMED: frozenset({C.KEYFRAMING}),
    C.KEYFRAME_FAILED: frozenset({C.EXPORTED, C.KEYFRAMING}),
    C.EMBEDDING: frozenset({C.KEYFRAMED, C.EMBEDDING}),
    C.EMBEDDED: frozenset({C.EMBEDDING}),
    C.EMBEDDING_FAILED: frozenset({C.KEYFRAMED, C.EMBEDDING}),
}
TRANSITIONS[C.REVIEW_APPROVED] |= {C.EXPORT_FAILED}
TRANSITIONS[C.EXPORTED] |= {C.KEYFRAME_FAILED}
TRANSITIONS[C.KEYFRAMED] |= {C.EMBEDDING_FAILED}

# A failed clip, retried, goes back to where its stage starts (with a fresh attempt budget).
RETRY_TO: dict[ClipState, tuple[ClipState, Stage]] = {
    C.EXPORT_FAILED: (C.REVIEW_APPROVED, Stage.EXPORT),
    C.KEYFRAME_FAILED: (C.EXPORTED, Stage.KEYFRAMES),
    C.EMBEDDING_FAILED: (C.KEYFRAMED, Stage.EMBED),
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


def retry(session: Session, clip_id: int) -> Stage:
    """Resume a failed clip from the start of its failed stage; the Dispatcher or the caller sends it."""
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise NotFound(f"clip {clip_id} does not exist")
    state = ClipState(clip.ingest_state)
    if state not in RETRY_TO:
        raise InvalidTransition("clip", clip_id, "retry", state.value)
    to, stage = RETRY_TO[state]
    transition(session, clip_id, to, allowed_from={state}, last_error=None)
    claims.reset(session, stage, clip_id)
    return stage
