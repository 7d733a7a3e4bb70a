"""Leases per tab: who is offered which pending clip, takeover of lapsed leases, release and heartbeat.

Expiry is never waited for: a lease is made to lapse by moving its `lease_until` into the past.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from heaters.db import unit_of_work
from heaters.models import ReviewActionKind
from heaters.review import leases
from heaters.review.errors import ClipGone, ClipNotPending, NotYourLease
from heaters.review.leases import Reviewer

if TYPE_CHECKING:
    from tests.review.conftest import Desk, Film, Team

LEASE = 300


def fill(desk: Desk, reviewer: Reviewer, count: int, video_id: int | None = None) -> list[int]:
    return desk.run(lambda s: leases.fill(s, reviewer, count, lease_seconds=LEASE, video_id=video_id))


def held(desk: Desk, reviewer: Reviewer) -> list[int]:
    return desk.run(lambda s: leases.held(s, reviewer.holder))


def seconds_left(desk: Desk, clip_id: int) -> float:
    with desk.engine.connect() as connection:
        value = connection.exec_driver_sql(
            "SELECT EXTRACT(EPOCH FROM lease_until - now()) FROM review_leases WHERE clip_id = %(id)s", {"id": clip_id}
        ).scalar_one()
    return float(value)


@pytest.fixture
def two_films(desk: Desk) -> tuple[Film, Film]:
    """Two videos of three clips each: [0,100), [100,200), [200,300)."""
    return (
        desk.video([(100, 0.5), (200, 0.5)], 300, title="first"),
        desk.video([(100, 0.5), (200, 0.5)], 300, title="second"),
    )


# --- fill ----------------------------------------------------------------------------------------


def test_fill_leases_the_first_free_pending_clips_in_source_order(
    desk: Desk, team: Team, two_films: tuple[Film, Film]
) -> None:
    """Source order is the video, then the start frame, not the clip id: a split's halves (new ids) come
    where their frames are."""
    first, second = two_films
    a, b, c = first.clips
    desk.lease(team.ana, b)
    desk.act(ReviewActionKind.SPLIT, b, team.ana, frame=150)
    desk.run(lambda s: leases.release_holder(s, team.ana.holder))
    b1, b2 = (i for i in desk.live_ids(first.video_id) if i not in (a, c))
    assert b1 > c and b2 > c  # newer rows, earlier frames
    desk.set_state(a, "review_approved")  # not pending: never offered
    got = fill(desk, team.ben, 4)
    assert sorted(got) == sorted([b1, b2, c, second.clips[0]])
    assert held(desk, team.ben) == [b1, b2, c, second.clips[0]]
    rows = desk.lease_rows()
    assert {(rows[i]["holder"], rows[i]["user_id"]) for i in got} == {(team.ben.holder, team.ben.user_id)}
    assert LEASE - 60 < seconds_left(desk, got[0]) <= LEASE


def test_fill_tops_up_past_what_any_tab_already_holds(desk: Desk, team: Team, two_films: tuple[Film, Film]) -> None:
    first, second = two_films
    assert sorted(fill(desk, team.ana, 2)) == first.clips[:2]
    assert sorted(fill(desk, team.ana, 2)) == [first.clips[2], second.clips[0]]
    assert held(desk, team.ana) == [*first.clips, second.clips[0]]
    assert sorted(fill(desk, team.ana_tab2, 5)) == second.clips[1:]  # the same user's other tab is another queue
    assert fill(desk, team.ben, 5) == []
    assert fill(desk, team.ben, 0) == [] and fill(desk, team.ben, -3) == []


def test_two_reviewers_filling_one_after_the_other_get_disjoint_clips(
    desk: Desk, team: Team, two_films: tuple[Film, Film]
) -> None:
    first, second = two_films
    ana = fill(desk, team.ana, 4)
    ben = fill(desk, team.ben, 4)
    assert sorted(ana) == [*first.clips, second.clips[0]]
    assert sorted(ben) == second.clips[1:]
    assert set(held(desk, team.ana)) == set(ana) and set(held(desk, team.ben)) == set(ben)


def test_two_fills_in_concurrent_transactions_get_disjoint_clips(
    desk: Desk, team: Team, two_films: tuple[Film, Film]
) -> None:
    """Both transactions stay open until both have filled (the barrier), so neither sees the other's
    committed leases: only the row locks (SKIP LOCKED) keep them apart. A fill that blocked on the other's
    locks instead would break the barrier and fail the test."""
    first, second = two_films
    barrier = threading.Barrier(2, timeout=15)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def run(reviewer: Reviewer) -> None:
        try:
            with unit_of_work() as session:
                got[reviewer.holder] = leases.fill(session, reviewer, 3, lease_seconds=LEASE)
                barrier.wait()
        except BaseException as error:  # reported below, in the test's own thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in (team.ana, team.ben)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    ana, ben = got[team.ana.holder], got[team.ben.holder]
    assert len(ana) == len(ben) == 3
    assert set(ana).isdisjoint(ben)
    assert set(ana) | set(ben) == {*first.clips, *second.clips}
    rows = desk.lease_rows()
    assert {i: rows[i]["holder"] for i in ana + ben} == {
        **{i: team.ana.holder for i in ana},
        **{i: team.ben.holder for i in ben},
    }


def test_fill_with_a_video_filter_leases_only_that_videos_clips(
    desk: Desk, team: Team, two_films: tuple[Film, Film]
) -> None:
    first, second = two_films
    assert sorted(fill(desk, team.ana, 10, video_id=second.video_id)) == second.clips
    assert fill(desk, team.ben, 10, video_id=second.video_id) == []
    assert sorted(fill(desk, team.ben, 10, video_id=first.video_id)) == first.clips
    assert fill(desk, team.ben, 10, video_id=second.video_id + 99) == []


def test_an_expired_lease_is_taken_over_by_another_tabs_fill(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, d = film.clips
    fill(desk, team.ana, 4)
    desk.expire(b)
    assert desk.run(lambda s: leases.holds(s, team.ana.holder, b)) is False
    assert fill(desk, team.ben, 4) == [b]  # only the lapsed one: the live leases stay Ana's
    row = desk.lease_rows()[b]
    assert (row["holder"], row["user_id"]) == (team.ben.holder, team.ben.user_id)
    assert held(desk, team.ana) == [a, c, d] and held(desk, team.ben) == [b]


# --- take ----------------------------------------------------------------------------------------


def test_take_leases_a_free_clip_and_renews_the_tabs_own_lease(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    assert desk.holder(b) == team.ana.holder
    desk.sql("UPDATE review_leases SET lease_until = now() + interval '5 seconds' WHERE clip_id = :id", id=b)
    desk.lease(team.ana, b)  # `/review?clip=ID` again in the same tab
    assert seconds_left(desk, b) > LEASE - 60


def test_take_refuses_a_clip_another_tab_holds_and_changes_nothing(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    for other in (team.ben, team.ana_tab2):
        error = desk.refused(
            NotYourLease,
            lambda s, r=other: leases.take(s, r, b, lease_seconds=LEASE),  # type: ignore[misc]
            match="being reviewed by someone else",
        )
        assert error.clip_id == b


def test_take_takes_over_an_expired_lease(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    desk.expire(b)
    desk.lease(team.ben, b)
    row = desk.lease_rows()[b]
    assert (row["holder"], row["user_id"]) == (team.ben.holder, team.ben.user_id)
    assert seconds_left(desk, b) > LEASE - 60


@pytest.mark.parametrize("state", ["review_approved", "review_skipped", "review_archived", "archived", "exporting"])
def test_take_refuses_a_clip_that_is_not_pending(desk: Desk, team: Team, film: Film, state: str) -> None:
    b = film.clips[1]
    desk.set_state(b, state)
    desk.refused(
        ClipNotPending,
        lambda s: leases.take(s, team.ana, b, lease_seconds=LEASE),
        match=f"not waiting for review \\(it is {state}\\)",
    )


def test_take_refuses_a_clip_that_does_not_exist(desk: Desk, team: Team, film: Film) -> None:
    missing = max(film.clips) + 50
    desk.refused(ClipGone, lambda s: leases.take(s, team.ana, missing, lease_seconds=LEASE), match="does not exist")


# --- who holds what ------------------------------------------------------------------------------


def test_holds_and_held_by_other_see_only_live_leases(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, _ = film.clips
    desk.lease(team.ana, a, b)
    desk.expire(b)

    def view(holder: str, clip_id: int) -> tuple[bool, bool, bool]:
        return desk.run(
            lambda s: (
                leases.holds(s, holder, clip_id),
                leases.holds(s, holder, clip_id, lock=True),
                leases.held_by_other(s, holder, clip_id),
            )
        )

    assert view(team.ana.holder, a) == (True, True, False)
    assert view(team.ana_tab2.holder, a) == (False, False, True)
    assert view(team.ben.holder, a) == (False, False, True)
    assert view(team.ana.holder, b) == (False, False, False)  # lapsed: nobody's
    assert view(team.ben.holder, b) == (False, False, False)
    assert view(team.ana.holder, c) == (False, False, False)


def test_held_lists_the_tabs_live_leases_on_pending_clips_in_source_order(
    desk: Desk, team: Team, two_films: tuple[Film, Film]
) -> None:
    first, second = two_films
    desk.lease(team.ana, second.clips[0], first.clips[2], first.clips[0], first.clips[1], second.clips[1])
    desk.expire(first.clips[1])
    desk.set_state(second.clips[1], "review_approved")  # decided elsewhere: no longer in the queue
    desk.lease(team.ben, second.clips[2])
    assert held(desk, team.ana) == [first.clips[0], first.clips[2], second.clips[0]]
    assert held(desk, team.ana_tab2) == []


# --- release, heartbeat, purge -------------------------------------------------------------------


def test_release_frees_the_named_clips_whoever_holds_them(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, _ = film.clips
    desk.lease(team.ana, a, b)
    desk.lease(team.ben, c)
    desk.run(lambda s: leases.release(s, [b, c]))
    assert set(desk.lease_rows()) == {a}
    before = desk.snapshot()
    desk.run(lambda s: leases.release(s, []))
    assert desk.snapshot() == before


def test_release_holder_frees_a_closed_tabs_clips_for_everyone_else(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, d = film.clips
    desk.lease(team.ana, a, b, c)
    desk.lease(team.ana_tab2, d)
    released = desk.run(lambda s: leases.release_holder(s, team.ana.holder))
    assert sorted(released) == [a, b, c]
    assert set(desk.lease_rows()) == {d}  # the user's other tab keeps its own
    assert sorted(fill(desk, team.ben, 4)) == [a, b, c]


def test_release_holder_can_keep_some_clips(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, _ = film.clips
    desk.lease(team.ana, a, b, c)
    assert sorted(desk.run(lambda s: leases.release_holder(s, team.ana.holder, keep=[b]))) == [a, c]
    assert set(desk.lease_rows()) == {b}
    assert desk.run(lambda s: leases.release_holder(s, "no-such-tab")) == []


def test_extend_keeps_only_the_live_leases_of_the_connected_tabs_alive(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, d = film.clips
    desk.lease(team.ana, a, b)
    desk.lease(team.ana_tab2, c)
    desk.lease(team.ben, d)
    desk.sql(
        "UPDATE review_leases SET lease_until = now() + interval '5 seconds' WHERE clip_id = ANY(:ids)", ids=[a, c, d]
    )
    desk.expire(b)
    untouched = {i: desk.lease_rows()[i]["lease_until"] for i in (b, d)}
    count = desk.run(lambda s: leases.extend(s, [team.ana.holder, team.ana_tab2.holder], lease_seconds=600))
    assert count == 2
    assert seconds_left(desk, a) > 500 and seconds_left(desk, c) > 500
    rows = desk.lease_rows()
    assert {i: rows[i]["lease_until"] for i in (b, d)} == untouched  # lapsed stays lapsed; Ben is not ours
    assert desk.run(lambda s: leases.holds(s, team.ana.holder, b)) is False
    assert fill(desk, team.ben, 4) == [b]  # so a lapsed lease can still be taken over after the heartbeat
    assert desk.run(lambda s: leases.extend(s, [], lease_seconds=600)) == 0


def test_purge_expired_deletes_only_lapsed_leases(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, _ = film.clips
    desk.lease(team.ana, a, b)
    desk.lease(team.ben, c)
    desk.expire(a, c)
    assert desk.run(leases.purge_expired) == 2
    assert set(desk.lease_rows()) == {b}
    assert desk.run(leases.purge_expired) == 0


def test_a_reviewer_tag_names_the_tab_without_revealing_its_token() -> None:
    tag = Reviewer(1, "secret-token-1").tag
    assert len(tag) == 16 and int(tag, 16) >= 0
    assert tag == Reviewer(2, "secret-token-1").tag  # the tab, not the user
    assert tag != Reviewer(1, "secret-token-2").tag
    assert "secret" not in tag
