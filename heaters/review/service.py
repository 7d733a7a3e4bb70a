"""Every review action and its undo (DESIGN point 2): one transaction each, recorded in `review_actions`.

An action is valid only on a `pending_review` clip the reviewer's tab holds; the clip row and its lease
are locked first, so a double key press, a stale tab or a second reviewer can never act twice. States
change only through `clips.service.transition`. Undo inverts the reviewer's latest action from its log
row (the clips' columns before and after, the cut it added or removed), and is refused once a clip has
moved past review. Services never commit: the caller's unit of work does, then sends the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session

from heaters import events, metrics
from heaters.clips import repository as clips_repository
from heaters.clips import service as clips_service
from heaters.errors import InvalidTransition
from heaters.models import Clip, ClipState, Cut, ReviewAction, ReviewActionKind
from heaters.models.states import REVIEW_STATES
from heaters.pipeline.dispatch import schedule
from heaters.pipeline.stages import Stage
from heaters.review import leases, rules
from heaters.review.errors import (
    ActionUnavailable,
    ClipGone,
    ClipNotPending,
    NothingToUndo,
    NotYourLease,
    UndoRefused,
)
from heaters.review.leases import Reviewer
from heaters.settings import get_settings

C = ClipState
K = ReviewActionKind
DECISIONS: dict[ReviewActionKind, ClipState] = {
    K.APPROVE: C.REVIEW_APPROVED,
    K.SKIP: C.REVIEW_SKIPPED,
    K.ARCHIVE: C.REVIEW_ARCHIVED,
}
VERBS: dict[ReviewActionKind, str] = {
    K.APPROVE: "Approved",
    K.SKIP: "Skipped",
    K.ARCHIVE: "Archived",
    K.MERGE: "Merged",
    K.GROUP: "Grouped",
    K.SPLIT: "Split",
}


@dataclass(frozen=True)
class ActionResult:
    action_id: int
    kind: ReviewActionKind
    video_id: int
    clip_id: int  # the clip the reviewer acted on (for an undo: the clip shown again)
    changed: tuple[int, ...]  # every clip whose row changed or was created
    removed: tuple[int, ...] = ()  # clips deleted (an undone split's halves, an undone merge's clip)
    focus: int | None = None  # the clip to show next: a merge's result, a split's first half, an undone clip
    message: str = ""


def act(
    session: Session,
    kind: ReviewActionKind,
    clip_id: int,
    reviewer: Reviewer,
    *,
    lease_seconds: int,
    frame: int | None = None,
) -> ActionResult:
    """Run one action by name: what the review page and the CLI call."""
    if kind in DECISIONS:
        return decide(session, clip_id, reviewer, kind)
    if kind is K.MERGE:
        return merge(session, clip_id, reviewer, lease_seconds=lease_seconds)
    if kind is K.GROUP:
        return group(session, clip_id, reviewer)
    if kind is K.SPLIT:
        if frame is None:
            raise ActionUnavailable("A split needs the frame on screen.", clip_id=clip_id)
        return split(session, clip_id, reviewer, frame, lease_seconds=lease_seconds)
    raise ValueError(f"unknown review action {kind!r}")


def decide(session: Session, clip_id: int, reviewer: Reviewer, kind: ReviewActionKind) -> ActionResult:
    """Approve, skip or archive."""
    clip = _actionable(session, clip_id, reviewer)
    before = {clip_id: _snapshot(clip)}
    _move(session, clip, DECISIONS[kind], {C.PENDING_REVIEW}, **_reviewed_by(reviewer))
    leases.release(session, [clip_id])
    if kind is K.APPROVE:
        _export_later(session, [clip_id])
    return _record(session, reviewer, kind, clip, [clip], before, message=f"{VERBS[kind]} clip {clip_id}.")


def _export_later(session: Session, clip_ids: list[int]) -> None:
    """Export approved clips once the grace period for an undo has passed (a delayed message, after commit).

    An undo inside the grace period puts the clip back in review; the message then finds nothing to do.
    """
    delay = get_settings().export_grace_seconds * 1000
    for clip_id in clip_ids:
        schedule(session, Stage.EXPORT, clip_id, delay_ms=delay or None)


def merge(session: Session, clip_id: int, reviewer: Reviewer, *, lease_seconds: int) -> ActionResult:
    """Remove the cut before the clip: it and the preceding clip become one new pending clip."""
    clip = _actionable(session, clip_id, reviewer)
    preceding = _preceding(session, clip)
    cut = _cut_at(session, clip.source_video_id, clip.start_frame)
    problem = rules.merge_problem(
        clip.start_frame, _neighbour(session, preceding, reviewer), cut_exists=cut is not None
    )
    if problem:
        raise ActionUnavailable(f"Cannot merge clip {clip_id}: {problem}", clip_id=clip_id)
    assert preceding is not None and cut is not None
    before = {clip_id: _snapshot(clip), _id(preceding): _snapshot(preceding)}
    # Both parents leave the no-overlap constraint before the merged clip takes their frames.
    _archive(session, preceding, REVIEW_STATES, "merge")
    _archive(session, clip, {C.PENDING_REVIEW}, "merge")
    cut_op = {"op": "remove", **_cut_fields(cut)}
    session.execute(text("DELETE FROM cuts WHERE id = :id"), {"id": cut.id})
    merged = _new_clip(
        session,
        clip.source_video_id,
        "merged",
        preceding.start_frame,
        clip.end_frame,
        {"created_from": "merge", "original_clip_ids": [_id(preceding), clip_id]},
    )
    leases.release(session, [clip_id, _id(preceding)])
    leases.take(session, reviewer, _id(merged), lease_seconds=lease_seconds)
    return _record(
        session,
        reviewer,
        K.MERGE,
        clip,
        [clip, preceding, merged],
        before,
        cut_ops=[cut_op],
        focus=_id(merged),
        message=f"Merged clips {_id(preceding)} and {clip_id} into clip {_id(merged)}.",
    )


def group(session: Session, clip_id: int, reviewer: Reviewer) -> ActionResult:
    """Approve the clip and the one before it as a pair, each pointing at the other."""
    clip = _actionable(session, clip_id, reviewer)
    preceding = _preceding(session, clip)
    problem = rules.group_problem(clip.start_frame, _neighbour(session, preceding, reviewer))
    if problem:
        raise ActionUnavailable(f"Cannot group clip {clip_id}: {problem}", clip_id=clip_id)
    assert preceding is not None
    before = {clip_id: _snapshot(clip), _id(preceding): _snapshot(preceding)}
    reviewed = _reviewed_by(reviewer)
    _move(session, preceding, C.REVIEW_APPROVED, REVIEW_STATES, grouped_with_clip_id=clip_id, **reviewed)
    _move(session, clip, C.REVIEW_APPROVED, {C.PENDING_REVIEW}, grouped_with_clip_id=_id(preceding), **reviewed)
    leases.release(session, [clip_id, _id(preceding)])
    _export_later(session, [_id(preceding), clip_id])
    return _record(
        session,
        reviewer,
        K.GROUP,
        clip,
        [clip, preceding],
        before,
        message=f"Grouped clip {clip_id} with clip {_id(preceding)}.",
    )


def split(session: Session, clip_id: int, reviewer: Reviewer, frame: int, *, lease_seconds: int) -> ActionResult:
    """Add a reviewer's cut at `frame`: the clip is archived, its two halves wait for review in its place."""
    clip = _actionable(session, clip_id, reviewer)
    problem = rules.split_problem(clip.start_frame, clip.end_frame, frame)
    if problem:
        raise ActionUnavailable(f"Cannot split clip {clip_id}: {problem}", clip_id=clip_id)
    before = {clip_id: _snapshot(clip)}
    _archive(session, clip, {C.PENDING_REVIEW}, "split")
    session.add(
        Cut(
            source_video_id=clip.source_video_id,
            frame_number=frame,
            source="reviewer",
            created_by_user_id=reviewer.user_id,
            operation_metadata={"split_of": clip_id},
        )
    )
    halves = [
        _new_clip(
            session,
            clip.source_video_id,
            "split",
            start,
            end,
            {"created_from": "split", "original_clip_id": clip_id, "part": part},
        )
        for part, (start, end) in enumerate(((clip.start_frame, frame), (frame, clip.end_frame)), start=1)
    ]
    leases.release(session, [clip_id])
    for half in halves:
        leases.take(session, reviewer, _id(half), lease_seconds=lease_seconds)
    return _record(
        session,
        reviewer,
        K.SPLIT,
        clip,
        [clip, *halves],
        before,
        cut_ops=[{"op": "add", "frame": frame}],
        focus=_id(halves[0]),
        message=f"Split clip {clip_id} at frame {frame:,}.",
    )


def undo(session: Session, reviewer: Reviewer, *, lease_seconds: int) -> ActionResult:
    """Invert this reviewer's latest action that is not undone yet, and lease its clip back to the tab."""
    action = (
        session.execute(
            text(
                "SELECT * FROM review_actions WHERE user_id = :user AND undone_at IS NULL "
                "ORDER BY id DESC LIMIT 1 FOR UPDATE"
            ),
            {"user": reviewer.user_id},
        )
        .mappings()
        .first()
    )
    if action is None:
        raise NothingToUndo("Nothing to undo.")
    kind = ReviewActionKind(action["action"])
    ids: list[int] = list(action["clip_ids"])
    before: dict[str, dict[str, Any]] = action["before"]
    after: dict[str, dict[str, Any]] = action["after"]
    removed: tuple[int, ...] = ()
    if kind in (K.SPLIT, K.MERGE):
        created = ids[1:] if kind is K.SPLIT else ids[2:]
        _delete_untouched(session, created, reviewer, kind)
        removed = tuple(created)
        for op in action["cut_ops"]:
            _invert_cut_op(session, _video_of(session, ids[0]), op)
    restored = [i for i in ids if str(i) in before]
    for clip_id in restored:
        _restore(session, clip_id, before[str(clip_id)], after[str(clip_id)])
    session.execute(text("UPDATE review_actions SET undone_at = now() WHERE id = :id"), {"id": action["id"]})
    shown = ids[0]
    leases.take(session, reviewer, shown, lease_seconds=lease_seconds)
    video_id = _video_of(session, shown)
    _publish(session, reviewer, video_id, restored, removed, action["cut_ops"], undo=True)
    return ActionResult(
        action_id=int(action["id"]),
        kind=kind,
        video_id=video_id,
        clip_id=shown,
        changed=tuple(restored),
        removed=removed,
        focus=shown,
        message=f"Undone: the {kind.value} of clip {shown}, which is back for review.",
    )


def undo_depth(session: Session, user_id: int) -> int:
    """How many of this reviewer's actions an undo could still reach."""
    return int(
        session.execute(
            text("SELECT count(*) FROM review_actions WHERE user_id = :user AND undone_at IS NULL"), {"user": user_id}
        ).scalar_one()
    )


# --- internals -------------------------------------------------------------------------------------


def _id(clip: Clip) -> int:
    assert clip.id is not None
    return clip.id


def _actionable(session: Session, clip_id: int, reviewer: Reviewer) -> Clip:
    """The clip, locked, if it waits for review and this tab holds it; otherwise say why not."""
    clip = session.get(Clip, clip_id, with_for_update=True, populate_existing=True)
    if clip is None:
        raise ClipGone(f"Clip {clip_id} no longer exists.", clip_id=clip_id)
    if clip.ingest_state != C.PENDING_REVIEW:
        raise ClipNotPending(
            f"Clip {clip_id} is no longer waiting for review (it is {clip.ingest_state}).", clip_id=clip_id
        )
    if not leases.holds(session, reviewer.holder, clip_id, lock=True):
        owner = "someone else" if leases.held_by_other(session, reviewer.holder, clip_id) else "nobody"
        raise NotYourLease(
            f"Clip {clip_id} is not loaded in this tab any more (held by {owner}); reload the queue.", clip_id=clip_id
        )
    return clip


def _preceding(session: Session, clip: Clip) -> Clip | None:
    """The live clip of the same video that ends where this one starts, locked."""
    if clip.start_frame == 0:
        return None
    row = session.execute(
        text(
            "SELECT id FROM clips WHERE source_video_id = :video AND end_frame = :start "
            f"AND ingest_state <> '{ClipState.ARCHIVED.value}' FOR UPDATE"
        ),
        {"video": clip.source_video_id, "start": clip.start_frame},
    ).first()
    return session.get(Clip, int(row[0]), populate_existing=True) if row else None


def _neighbour(session: Session, clip: Clip | None, reviewer: Reviewer) -> rules.Neighbour | None:
    if clip is None:
        return None
    return rules.Neighbour(
        id=_id(clip),
        state=clip.ingest_state,
        held_by_other=leases.held_by_other(session, reviewer.holder, _id(clip)),
        grouped_with=clip.grouped_with_clip_id,
    )


def _cut_at(session: Session, video_id: int, frame: int) -> Cut | None:
    row = session.execute(
        text("SELECT id FROM cuts WHERE source_video_id = :video AND frame_number = :frame FOR UPDATE"),
        {"video": video_id, "frame": frame},
    ).first()
    return session.get(Cut, int(row[0])) if row else None


def _cut_fields(cut: Cut) -> dict[str, Any]:
    return {
        "frame": cut.frame_number,
        "source": cut.source,
        "score": cut.score,
        "created_by_user_id": cut.created_by_user_id,
        "operation_metadata": cut.operation_metadata,
    }


def _reviewed_by(reviewer: Reviewer) -> dict[str, Any]:
    return {"reviewed_at": func.now(), "reviewed_by_user_id": reviewer.user_id}


def _snapshot(clip: Clip) -> dict[str, Any]:
    """The columns an action changes, as they are now: what an undo puts back."""
    return {
        "state": clip.ingest_state,
        "reviewed_at": clip.reviewed_at.isoformat() if clip.reviewed_at else None,
        "reviewed_by_user_id": clip.reviewed_by_user_id,
        "grouped_with_clip_id": clip.grouped_with_clip_id,
        "processing_metadata": clip.processing_metadata,
        "start_frame": clip.start_frame,
        "end_frame": clip.end_frame,
    }


def _move(
    session: Session, clip: Clip, to: ClipState, allowed: set[ClipState] | frozenset[ClipState], **values: Any
) -> None:
    try:
        clips_service.transition(session, _id(clip), to, allowed_from=allowed, **values)
    except InvalidTransition as error:
        raise ClipNotPending(f"Clip {clip.id} changed meanwhile ({error.current}).", clip_id=clip.id) from error
    session.refresh(clip)


def _archive(session: Session, clip: Clip, allowed: set[ClipState] | frozenset[ClipState], reason: str) -> None:
    _move(
        session, clip, C.ARCHIVED, allowed, processing_metadata={**clip.processing_metadata, "archived_reason": reason}
    )


def _new_clip(session: Session, video_id: int, kind: str, start: int, end: int, meta: dict[str, Any]) -> Clip:
    clip = Clip(
        source_video_id=video_id,
        clip_identifier=rules.new_identifier(video_id, kind, start, end),
        start_frame=start,
        end_frame=end,
        ingest_state=C.PENDING_REVIEW.value,
        processing_metadata=meta,
    )
    session.add(clip)
    session.flush()
    session.refresh(clip)
    return clip


def _record(
    session: Session,
    reviewer: Reviewer,
    kind: ReviewActionKind,
    clip: Clip,
    clips: list[Clip],
    before: dict[int, dict[str, Any]],
    *,
    cut_ops: list[dict[str, Any]] | None = None,
    focus: int | None = None,
    message: str,
) -> ActionResult:
    metrics.REVIEW_ACTIONS.labels(kind.value).inc()
    row = ReviewAction(
        user_id=reviewer.user_id,
        action=kind.value,
        clip_ids=[_id(c) for c in clips],
        before={str(k): v for k, v in before.items()},
        after={str(_id(c)): _snapshot(c) for c in clips},
        cut_ops=cut_ops or [],
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    changed = tuple(_id(c) for c in clips)
    _publish(session, reviewer, clip.source_video_id, changed, (), cut_ops or [])
    return ActionResult(
        action_id=row.id,
        kind=kind,
        video_id=clip.source_video_id,
        clip_id=_id(clip),
        changed=changed,
        focus=focus,
        message=message,
    )


def _restore(session: Session, clip_id: int, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Put a clip's columns back, but only from the state the action left it in (and its group, too:
    an approval that someone has since grouped another clip with stands until that group is undone)."""
    reviewed_at = datetime.fromisoformat(before["reviewed_at"]) if before["reviewed_at"] else None
    row = session.execute(
        text("SELECT grouped_with_clip_id FROM clips WHERE id = :id FOR UPDATE"), {"id": clip_id}
    ).first()
    if row is not None and row[0] != after["grouped_with_clip_id"]:
        raise UndoRefused(
            f"Cannot undo: clip {clip_id} has been grouped with clip {row[0]} since; undo that group first.",
            clip_id=clip_id,
        )
    try:
        clips_service.transition(
            session,
            clip_id,
            ClipState(before["state"]),
            allowed_from={ClipState(after["state"])},
            reviewed_at=reviewed_at,
            reviewed_by_user_id=before["reviewed_by_user_id"],
            grouped_with_clip_id=before["grouped_with_clip_id"],
            processing_metadata=before["processing_metadata"],
        )
    except InvalidTransition as error:
        where = f"it is {error.current}" if error.current else "it no longer exists"
        raise UndoRefused(
            f"Cannot undo: clip {clip_id} has moved on since ({where}), so its decision stands.", clip_id=clip_id
        ) from error


def _delete_untouched(session: Session, clip_ids: list[int], reviewer: Reviewer, kind: ReviewActionKind) -> None:
    """The clips a split or merge made go away on undo, but only while nobody has decided on them."""
    rows = session.execute(
        text("SELECT id, ingest_state FROM clips WHERE id = ANY(:ids) FOR UPDATE"), {"ids": clip_ids}
    ).all()
    states = {int(r[0]): str(r[1]) for r in rows}
    for clip_id in clip_ids:
        state = states.get(clip_id)
        if state != C.PENDING_REVIEW:
            where = f"it is {state}" if state else "it no longer exists"
            raise UndoRefused(
                f"Cannot undo the {kind.value}: clip {clip_id} that it made has been reviewed since ({where}).",
                clip_id=clip_id,
            )
        if leases.held_by_other_user(session, reviewer.user_id, clip_id):
            raise UndoRefused(
                f"Cannot undo the {kind.value}: clip {clip_id} that it made is being reviewed by someone else.",
                clip_id=clip_id,
            )
    session.execute(text("DELETE FROM clips WHERE id = ANY(:ids)"), {"ids": clip_ids})


def _invert_cut_op(session: Session, video_id: int, op: dict[str, Any]) -> None:
    if op["op"] == "add":
        session.execute(
            text("DELETE FROM cuts WHERE source_video_id = :video AND frame_number = :frame"),
            {"video": video_id, "frame": op["frame"]},
        )
        return
    session.add(
        Cut(
            source_video_id=video_id,
            frame_number=op["frame"],
            source=op["source"],
            score=op["score"],
            created_by_user_id=op["created_by_user_id"],
            operation_metadata=op["operation_metadata"] or {},
        )
    )
    session.flush()


def _video_of(session: Session, clip_id: int) -> int:
    row = session.execute(text("SELECT source_video_id FROM clips WHERE id = :id"), {"id": clip_id}).first()
    if row is None:
        raise ClipGone(f"Clip {clip_id} no longer exists.", clip_id=clip_id)
    return int(row[0])


def _publish(
    session: Session,
    reviewer: Reviewer,
    video_id: int,
    changed: tuple[int, ...] | list[int],
    removed: tuple[int, ...],
    cut_ops: list[dict[str, Any]],
    *,
    undo: bool = False,
) -> None:
    """After the commit, every page showing these clips, their video or the counts hears of it, with the
    new rows, the cuts added and removed, and the counts in the event itself, so no page has to query."""
    added = [op for op in cut_ops if (op["op"] == "add") != undo]
    gone = [op for op in cut_ops if (op["op"] == "add") == undo]
    rows = session.execute(
        text(
            "SELECT c.id, c.start_frame, c.end_frame, c.ingest_state AS state, c.grouped_with_clip_id AS grouped_with,"
            " l.holder FROM clips c LEFT JOIN review_leases l ON l.clip_id = c.id AND l.lease_until > now()"
            " WHERE c.id = ANY(:ids)"
        ),
        {"ids": list(changed)},
    ).mappings()
    clips = [
        {**{k: v for k, v in row.items() if k != "holder"}, "held_by": row["holder"] and leases.tag(row["holder"])}
        for row in rows
    ]
    counts = clips_repository.pending_counts(session, video_id)
    events.publish(
        "clips.changed",
        topics=[events.COUNTS, *events.video_topics(video_id), *(events.clip_topic(i) for i in (*changed, *removed))],
        video_id=video_id,
        actor=reviewer.tag,
        clips=clips,
        removed=list(removed),
        cuts_added=[
            {"frame": op["frame"], "score": op.get("score"), "source": op.get("source", "reviewer")} for op in added
        ],
        cuts_removed=[op["frame"] for op in gone],
        pending_total=counts.total,
        video_pending=counts.video,
    )
