"""Read queries about clips shared by the review page, the videos page and the events they publish."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel import Session


@dataclass(frozen=True)
class PendingCounts:
    total: int
    video: int


def pending_counts(session: Session, video_id: int) -> PendingCounts:
    """Clips waiting for review, overall and in one video (one query)."""
    row = session.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE source_video_id = :video) FROM clips "
            "WHERE ingest_state = 'pending_review'"
        ),
        {"video": video_id},
    ).one()
    return PendingCounts(int(row[0]), int(row[1]))


def pending_total(session: Session) -> int:
    return int(session.execute(text("SELECT count(*) FROM clips WHERE ingest_state = 'pending_review'")).scalar_one())
