"""Leases on clips, in PostgreSQL: the clips loaded in a reviewer's tab are offered to nobody else.

A lease belongs to a tab (`holder`, Reflex's client token) and a user. It ends when the clip is acted
on, when the tab leaves the page or closes (the web process stops extending it), or when `lease_until`
passes without a heartbeat. Each function is one statement; callers own the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session

from heaters.models.states import ClipState
from heaters.review.errors import ClipGone, ClipNotPending, NotYourLease

_PENDING = ClipState.PENDING_REVIEW.value


@dataclass(frozen=True)
class Reviewer:
    """Who acts: the signed-in user, and the tab they act from."""

    user_id: int
    holder: str

    @property
    def tag(self) -> str:
        return tag(self.holder)


def tag(holder: str) -> str:
    """Names a tab in events without revealing its token (which would let others impersonate it)."""
    return hashlib.sha256(holder.encode()).hexdigest()[:16]


def held(session: Session, holder: str) -> list[int]:
    """The pending clips this tab holds, in source order."""
    return [
        int(i)
        for i in session.execute(
            text(
                "SELECT c.id FROM review_leases l JOIN clips c ON c.id = l.clip_id "
                f"WHERE l.holder = :holder AND l.lease_until > now() AND c.ingest_state = '{_PENDING}' "
                "ORDER BY c.source_video_id, c.start_frame"
            ),
            {"holder": holder},
        ).scalars()
    ]


def fill(
    session: Session, reviewer: Reviewer, count: int, *, lease_seconds: int, video_id: int | None = None
) -> list[int]:
    """Lease up to `count` more pending clips, the first free ones in source order.

    `SKIP LOCKED` lets two tabs filling at once pass each other instead of both picking the same clip;
    the conditional upsert only takes over a lease that has run out.
    """
    if count <= 0:
        return []
    rows = session.execute(
        text(
            f"""
            WITH picked AS (
                SELECT c.id, c.source_video_id, c.start_frame FROM clips c
                 WHERE c.ingest_state = '{_PENDING}'
                   AND (CAST(:video AS integer) IS NULL OR c.source_video_id = CAST(:video AS integer))
                   AND NOT EXISTS (SELECT 1 FROM review_leases l WHERE l.clip_id = c.id AND l.lease_until > now())
                 ORDER BY c.source_video_id, c.start_frame
                 LIMIT :count
                   FOR UPDATE OF c SKIP LOCKED
            )
            INSERT INTO review_leases (clip_id, user_id, holder, lease_until)
            SELECT id, :user, :holder, now() + make_interval(secs => :secs) FROM picked
            ON CONFLICT (clip_id) DO UPDATE
               SET user_id = EXCLUDED.user_id, holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until,
                   inserted_at = now()
             WHERE review_leases.lease_until <= now()
            RETURNING clip_id
            """
        ),
        {
            "video": video_id,
            "count": count,
            "user": reviewer.user_id,
            "holder": reviewer.holder,
            "secs": lease_seconds,
        },
    ).scalars()
    return [int(r) for r in rows]


def take(session: Session, reviewer: Reviewer, clip_id: int, *, lease_seconds: int) -> None:
    """Lease one named clip (`/review?clip=ID`, undo, a clip made by a split or merge)."""
    row = session.execute(
        text("SELECT ingest_state FROM clips WHERE id = :id FOR UPDATE"),
        {"id": clip_id},
    ).first()
    if row is None:
        raise ClipGone(f"Clip {clip_id} does not exist.", clip_id=clip_id)
    if row[0] != ClipState.PENDING_REVIEW:
        raise ClipNotPending(f"Clip {clip_id} is not waiting for review (it is {row[0]}).", clip_id=clip_id)
    taken = session.execute(
        text(
            """
            INSERT INTO review_leases (clip_id, user_id, holder, lease_until)
            VALUES (:id, :user, :holder, now() + make_interval(secs => :secs))
            ON CONFLICT (clip_id) DO UPDATE
               SET user_id = EXCLUDED.user_id, holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until
             WHERE review_leases.lease_until <= now() OR review_leases.holder = EXCLUDED.holder
            RETURNING clip_id
            """
        ),
        {"id": clip_id, "user": reviewer.user_id, "holder": reviewer.holder, "secs": lease_seconds},
    ).first()
    if taken is None:
        raise NotYourLease(f"Clip {clip_id} is being reviewed by someone else.", clip_id=clip_id)


def holds(session: Session, holder: str, clip_id: int, *, lock: bool = False) -> bool:
    """Whether this tab holds a live lease on the clip; with `lock`, the lease cannot lapse and be taken
    over by another tab until the caller's transaction ends."""
    suffix = " FOR UPDATE" if lock else ""
    row = session.execute(
        text("SELECT 1 FROM review_leases WHERE clip_id = :id AND holder = :holder AND lease_until > now()" + suffix),
        {"id": clip_id, "holder": holder},
    ).first()
    return row is not None


def held_by_other(session: Session, holder: str, clip_id: int) -> bool:
    row = session.execute(
        text("SELECT 1 FROM review_leases WHERE clip_id = :id AND holder <> :holder AND lease_until > now()"),
        {"id": clip_id, "holder": holder},
    ).first()
    return row is not None


def held_by_other_user(session: Session, user_id: int, clip_id: int) -> bool:
    """Held by another reviewer (not merely by another tab of the same one)."""
    row = session.execute(
        text("SELECT 1 FROM review_leases WHERE clip_id = :id AND user_id <> :user AND lease_until > now()"),
        {"id": clip_id, "user": user_id},
    ).first()
    return row is not None


def release(session: Session, clip_ids: Sequence[int]) -> None:
    """A clip acted on leaves every queue."""
    if clip_ids:
        session.execute(text("DELETE FROM review_leases WHERE clip_id = ANY(:ids)"), {"ids": list(clip_ids)})


def release_holder(session: Session, holder: str, *, keep: Sequence[int] = ()) -> list[int]:
    """A tab that left the page (or closed) gives back what it held; returns the released clip ids."""
    rows = session.execute(
        text("DELETE FROM review_leases WHERE holder = :holder AND NOT (clip_id = ANY(:keep)) RETURNING clip_id"),
        {"holder": holder, "keep": list(keep)},
    ).scalars()
    return [int(r) for r in rows]


def extend(session: Session, holders: Sequence[str], *, lease_seconds: int) -> int:
    """The heartbeat: every tab still connected to this web process keeps its leases."""
    if not holders:
        return 0
    result = session.execute(
        text(
            "UPDATE review_leases SET lease_until = now() + make_interval(secs => :secs) "
            "WHERE holder = ANY(:holders) AND lease_until > now()"
        ),
        {"holders": list(holders), "secs": lease_seconds},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge_expired(session: Session) -> int:
    result = session.execute(text("DELETE FROM review_leases WHERE lease_until <= now()"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
