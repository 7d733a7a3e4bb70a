"""Review fixtures: users and their tabs, videos cut into clips, and a `Desk` to set up and inspect rows.

Every helper runs its own transaction on the real database (the `engine` fixture empties it after each
test), so what a test reads is what was committed, as another tab would see it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import ReviewActionKind, SourceVideo
from heaters.review import leases, service
from heaters.review.errors import ReviewError
from heaters.review.leases import Reviewer
from heaters.videos.stages import write_cuts_and_clips

LEASE = 300  # seconds: long enough never to lapse during a test; expiry is set by SQL, never waited for
T = TypeVar("T")
E = TypeVar("E", bound=ReviewError)

# Every row of the tables an action or an undo may touch, in a stable order.
TABLES = {
    "clips": "SELECT * FROM clips ORDER BY id",
    "cuts": "SELECT * FROM cuts ORDER BY id",
    "review_leases": "SELECT * FROM review_leases ORDER BY clip_id",
    "review_actions": "SELECT * FROM review_actions ORDER BY id",
}


@dataclass(frozen=True)
class Film:
    """A video and its scene-detection clips, in source order."""

    video_id: int
    clips: list[int]
    frame_count: int


class Desk:
    """Set rows up and read them back, each call one committed transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- setup -------------------------------------------------------------------------------------

    def video(self, cuts: Sequence[tuple[int, float]], frame_count: int, *, title: str = "film") -> Film:
        """A 25 fps video with scene-detection cuts and the pending clips between them."""
        with unit_of_work() as session:
            video = SourceVideo(
                title=title,
                fps_num=25,
                fps_den=1,
                frame_count=frame_count,
                proxy_filepath=f"proxies/{title}.mp4",
            )
            session.add(video)
            session.flush()
            assert video.id is not None
            clips = write_cuts_and_clips(session, video.id, list(cuts), frame_count)
        return Film(video.id, clips, frame_count)

    def lease(self, reviewer: Reviewer, *clip_ids: int, seconds: int = LEASE) -> None:
        with unit_of_work() as session:
            for clip_id in clip_ids:
                leases.take(session, reviewer, clip_id, lease_seconds=seconds)

    def expire(self, *clip_ids: int) -> None:
        """Let these leases run out (as if the tab stopped its heartbeat a while ago)."""
        self.sql(
            "UPDATE review_leases SET lease_until = now() - interval '1 second' WHERE clip_id = ANY(:ids)",
            ids=list(clip_ids),
        )

    def set_state(self, clip_id: int, state: str) -> None:
        """Move a clip behind the service's back, as the export stage would."""
        self.sql("UPDATE clips SET ingest_state = :state WHERE id = :id", state=state, id=clip_id)

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(statement), params)

    # --- running the service -------------------------------------------------------------------------

    def run(self, call: Callable[[Session], T]) -> T:
        """One call in its own unit of work, as the review page makes it."""
        with unit_of_work() as session:
            return call(session)

    def act(
        self, kind: ReviewActionKind, clip_id: int, reviewer: Reviewer, *, frame: int | None = None
    ) -> service.ActionResult:
        return self.run(lambda s: service.act(s, kind, clip_id, reviewer, lease_seconds=LEASE, frame=frame))

    def undo(self, reviewer: Reviewer) -> service.ActionResult:
        return self.run(lambda s: service.undo(s, reviewer, lease_seconds=LEASE))

    def depth(self, reviewer: Reviewer) -> int:
        return self.run(lambda s: service.undo_depth(s, reviewer.user_id))

    def refused(self, error: type[E], call: Callable[[Session], object], *, match: str | None = None) -> E:
        """The call raises `error`, and not one row of clips, cuts, leases or actions has changed."""
        before = self.snapshot()
        with pytest.raises(error, match=match) as info, unit_of_work() as session:
            call(session)
        assert self.snapshot() == before
        return info.value

    # --- reading -------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        with self.engine.connect() as connection:
            return {
                name: [dict(r) for r in connection.execute(text(query)).mappings()] for name, query in TABLES.items()
            }

    def clip(self, clip_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(text("SELECT * FROM clips WHERE id = :id"), {"id": clip_id}).mappings().first()
        return dict(row) if row else None

    def state(self, clip_id: int) -> str | None:
        row = self.clip(clip_id)
        return row["ingest_state"] if row else None

    def live(self, video_id: int) -> list[tuple[int, int, str]]:
        """(start, end, state) of the clips that are not history, in source order."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT start_frame, end_frame, ingest_state FROM clips "
                    "WHERE source_video_id = :v AND ingest_state <> 'archived' ORDER BY start_frame"
                ),
                {"v": video_id},
            ).all()
        return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]

    def live_ids(self, video_id: int) -> list[int]:
        with self.engine.connect() as connection:
            return [
                int(i)
                for i in connection.execute(
                    text(
                        "SELECT id FROM clips WHERE source_video_id = :v AND ingest_state <> 'archived' "
                        "ORDER BY start_frame"
                    ),
                    {"v": video_id},
                ).scalars()
            ]

    def cuts(self, video_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT * FROM cuts WHERE source_video_id = :v ORDER BY frame_number"), {"v": video_id}
            ).mappings()
            return [dict(r) for r in rows]

    def cut_frames(self, video_id: int) -> list[int]:
        return [int(c["frame_number"]) for c in self.cuts(video_id)]

    def holder(self, clip_id: int) -> str | None:
        """The tab holding a live lease on the clip, if any."""
        with self.engine.connect() as connection:
            value = connection.execute(
                text("SELECT holder FROM review_leases WHERE clip_id = :id AND lease_until > now()"), {"id": clip_id}
            ).scalar()
        return str(value) if value is not None else None

    def lease_rows(self) -> dict[int, dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM review_leases")).mappings()
            return {int(r["clip_id"]): dict(r) for r in rows}

    def actions(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(text(TABLES["review_actions"])).mappings()]

    def assert_consistent(self, video_id: int) -> None:
        """The invariants every flow keeps: live clips tile the video exactly, cuts are their inner
        boundaries, and a group is always a pair of approved clips pointing at each other."""
        with self.engine.connect() as connection:
            frame_count = connection.execute(
                text("SELECT frame_count FROM source_videos WHERE id = :v"), {"v": video_id}
            ).scalar_one()
            groups = connection.execute(
                text(
                    "SELECT c.id, c.ingest_state, g.id AS partner, g.ingest_state AS partner_state, "
                    "g.grouped_with_clip_id AS back FROM clips c LEFT JOIN clips g ON g.id = c.grouped_with_clip_id "
                    "WHERE c.source_video_id = :v AND c.grouped_with_clip_id IS NOT NULL"
                ),
                {"v": video_id},
            ).mappings()
            bad_groups = [
                dict(g)
                for g in groups
                if g["back"] != g["id"]
                or g["ingest_state"] != "review_approved"
                or g["partner_state"] != "review_approved"
            ]
        live = self.live(video_id)
        bounds = [0, *(end for _, end, _ in live)]
        assert [start for start, _, _ in live] == bounds[:-1], f"live clips leave a gap or overlap: {live}"
        assert bounds[-1] == frame_count, f"live clips do not reach the end: {live}"
        assert self.cut_frames(video_id) == bounds[1:-1], "cuts are not the live clips' inner boundaries"
        assert bad_groups == [], f"half a group: {bad_groups}"


@dataclass(frozen=True)
class Team:
    """Two reviewers: Ana with two tabs open, Ben with one."""

    ana: Reviewer
    ana_tab2: Reviewer
    ben: Reviewer


@pytest.fixture
def desk(engine: Engine, broker: Any) -> Desk:
    """With the test Redis as broker: an approval queues its export (after the grace period)."""
    return Desk(engine)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One real argon2id hash, made once: hashing is tested in tests/auth, and costs 0.1 s a user."""
    from heaters.auth.passwords import hash_password

    return hash_password("reviewer-password")


@pytest.fixture
def team(engine: Engine, password_hash: str, monkeypatch: pytest.MonkeyPatch) -> Team:
    """Users made by the auth service (with a precomputed hash); each tab is its own lease holder."""
    monkeypatch.setattr("heaters.auth.service.hash_password", lambda _password: password_hash)
    with unit_of_work() as session:
        ana = create_user(session, "ana", "ana-password")
        ben = create_user(session, "ben", "ben-password")
        assert ana.id is not None and ben.id is not None
        ana_id, ben_id = ana.id, ben.id
    return Team(Reviewer(ana_id, "tab-ana-1"), Reviewer(ana_id, "tab-ana-2"), Reviewer(ben_id, "tab-ben-1"))


@pytest.fixture
def film(desk: Desk) -> Film:
    """Four pending clips: A [0,100), B [100,200), C [200,300), D [300,400), cut scores 0.8, 0.5, 0.9."""
    return desk.video([(100, 0.8), (200, 0.5), (300, 0.9)], 400)
