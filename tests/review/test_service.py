"""Review actions and their undo on the real database: what each does to the rows, and when it is refused.

Every refusal is checked against a snapshot of clips, cuts, review_leases and review_actions: a refused
action or undo must leave no trace at all.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from sqlmodel import Session

from heaters.models import ReviewActionKind
from heaters.review import leases, service
from heaters.review.errors import (
    ActionUnavailable,
    ClipGone,
    ClipNotPending,
    NothingToUndo,
    NotYourLease,
    ReviewError,
    UndoRefused,
)
from heaters.review.leases import Reviewer

if TYPE_CHECKING:
    from tests.review.conftest import Desk, Film, Team

K = ReviewActionKind
LEASE = 300
ACTIONS = list(K)
DECISIONS = [(K.APPROVE, "review_approved"), (K.SKIP, "review_skipped"), (K.ARCHIVE, "review_archived")]
SPLIT_AT = 150  # inside B [100, 200)


def attempt(kind: ReviewActionKind, clip_id: int, reviewer: Reviewer, frame: int | None = None) -> Callable[..., Any]:
    """The call the review page makes for `kind` (a split at SPLIT_AT unless told otherwise)."""
    if kind is K.SPLIT and frame is None:
        frame = SPLIT_AT
    return lambda s: service.act(s, kind, clip_id, reviewer, lease_seconds=LEASE, frame=frame)


def undo(reviewer: Reviewer) -> Callable[[Session], service.ActionResult]:
    return lambda s: service.undo(s, reviewer, lease_seconds=LEASE)


def history(desk: Desk) -> dict[str, list[dict[str, Any]]]:
    """Clips and cuts as an undo must put them back: every column but timestamps the database sets itself
    (an undo re-inserts a removed cut, so it gets a new id)."""
    snapshot = desk.snapshot()
    clips = [{k: v for k, v in row.items() if k != "updated_at"} for row in snapshot["clips"]]
    cuts = [{k: v for k, v in row.items() if k not in ("id", "inserted_at", "updated_at")} for row in snapshot["cuts"]]
    return {"clips": clips, "cuts": sorted(cuts, key=lambda c: (c["source_video_id"], c["frame_number"]))}


def live_id(desk: Desk, film: Film, start: int, end: int) -> int:
    """The live clip with exactly these frames."""
    for clip_id in desk.live_ids(film.video_id):
        row = desk.clip(clip_id)
        assert row is not None
        if (row["start_frame"], row["end_frame"]) == (start, end):
            return clip_id
    raise AssertionError(f"no live clip [{start}, {end}) in {desk.live(film.video_id)}")


# --- what each action does ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "state"), DECISIONS)
def test_a_decision_moves_the_clip_records_who_and_frees_only_its_lease(
    desk: Desk, team: Team, film: Film, kind: ReviewActionKind, state: str
) -> None:
    a, b, c, d = film.clips
    desk.lease(team.ana, b, c)
    result = desk.act(kind, b, team.ana)
    row = desk.clip(b)
    assert row is not None
    assert row["ingest_state"] == state
    assert row["reviewed_by_user_id"] == team.ana.user_id and row["reviewed_at"] is not None
    assert row["grouped_with_clip_id"] is None
    assert desk.holder(c) == team.ana.holder  # the rest of the tab's queue stays
    assert [desk.state(i) for i in (a, c, d)] == ["pending_review"] * 3
    assert desk.cut_frames(film.video_id) == [100, 200, 300]
    (action,) = desk.actions()
    assert (action["user_id"], action["action"], action["clip_ids"]) == (team.ana.user_id, kind.value, [b])
    assert (action["cut_ops"], action["undone_at"]) == ([], None)
    assert action["before"] == {
        str(b): {
            "state": "pending_review",
            "reviewed_at": None,
            "reviewed_by_user_id": None,
            "grouped_with_clip_id": None,
            "processing_metadata": {"created_from": "scene_detection", "segment_index": 2},
            "start_frame": 100,
            "end_frame": 200,
        }
    }
    after = action["after"][str(b)]
    assert (after["state"], after["reviewed_by_user_id"]) == (state, team.ana.user_id)
    assert after["reviewed_at"] == row["reviewed_at"].isoformat()
    assert (result.action_id, result.kind, result.clip_id, result.changed, result.removed) == (
        action["id"],
        kind,
        b,
        (b,),
        (),
    )
    desk.assert_consistent(film.video_id)


def test_a_decided_clip_leaves_the_tabs_leases(desk: Desk, team: Team, film: Film) -> None:
    """A lease ends when its clip is acted on (leases.py); merge, group and split release theirs."""
    a, b, c, d = film.clips
    desk.lease(team.ana, *film.clips)
    desk.act(K.APPROVE, a, team.ana)
    desk.act(K.SKIP, b, team.ana)
    desk.act(K.ARCHIVE, c, team.ana)
    assert set(desk.lease_rows()) == {d}


def test_a_clip_just_decided_in_a_tab_still_open_does_not_block_merge_or_group_with_it(
    desk: Desk, team: Team, film: Film
) -> None:
    """Ana approves A and stays on the page (her heartbeat extends her tab's leases); Ben, on B, must be
    able to group B with A: nobody is reviewing A any more."""
    a, b, _, _ = film.clips
    desk.lease(team.ana, a)
    desk.act(K.APPROVE, a, team.ana)
    desk.run(lambda s: leases.extend(s, [team.ana.holder], lease_seconds=LEASE))
    desk.lease(team.ben, b)
    desk.act(K.GROUP, b, team.ben)
    assert (desk.state(a), desk.state(b)) == ("review_approved", "review_approved")


def test_merge_removes_the_cut_and_puts_one_clip_leased_to_the_tab_in_place_of_both(
    desk: Desk, team: Team, film: Film
) -> None:
    a, b, c, _ = film.clips
    desk.lease(team.ana, a, b, c)
    result = desk.act(K.MERGE, b, team.ana)
    merged = result.focus
    assert merged is not None and merged not in film.clips
    assert desk.live(film.video_id) == [
        (0, 200, "pending_review"),
        (200, 300, "pending_review"),
        (300, 400, "pending_review"),
    ]
    row = desk.clip(merged)
    assert row is not None
    assert row["clip_identifier"].startswith(f"{film.video_id}_merged_0_200_")
    assert row["processing_metadata"] == {"created_from": "merge", "original_clip_ids": [a, b]}
    assert (row["reviewed_at"], row["reviewed_by_user_id"], row["grouped_with_clip_id"]) == (None, None, None)
    for parent in (a, b):
        parent_row = desk.clip(parent)
        assert parent_row is not None and parent_row["ingest_state"] == "archived"
        assert parent_row["processing_metadata"]["archived_reason"] == "merge"
    assert desk.cut_frames(film.video_id) == [200, 300]
    held = desk.lease_rows()
    assert set(held) == {merged, c}  # the parents' leases are gone; the merged clip is this tab's
    assert (held[merged]["holder"], held[merged]["user_id"]) == (team.ana.holder, team.ana.user_id)
    (action,) = desk.actions()
    assert (action["action"], action["clip_ids"]) == ("merge", [b, a, merged])
    assert set(action["before"]) == {str(a), str(b)}
    assert {k: v["state"] for k, v in action["after"].items()} == {
        str(a): "archived",
        str(b): "archived",
        str(merged): "pending_review",
    }
    assert (action["after"][str(merged)]["start_frame"], action["after"][str(merged)]["end_frame"]) == (0, 200)
    assert action["cut_ops"] == [
        {
            "op": "remove",
            "frame": 100,
            "source": "scene_detection",
            "score": 0.8,
            "created_by_user_id": None,
            "operation_metadata": {"detection_index": 1},
        }
    ]
    assert (result.clip_id, result.changed) == (b, (b, a, merged))
    desk.assert_consistent(film.video_id)


def test_merge_into_an_approved_clip_makes_a_pending_clip_again(desk: Desk, team: Team, film: Film) -> None:
    """A decided clip can still be merged while nothing downstream started: the result needs a new look."""
    a, b, _, _ = film.clips
    desk.lease(team.ben, a)
    desk.act(K.APPROVE, a, team.ben)
    desk.run(lambda s: leases.release_holder(s, team.ben.holder))  # Ben's tab closed
    desk.lease(team.ana, b)
    merged = desk.act(K.MERGE, b, team.ana).focus
    assert merged is not None
    assert desk.state(a) == "archived" and desk.state(merged) == "pending_review"
    assert desk.actions()[-1]["before"][str(a)]["state"] == "review_approved"


def test_group_approves_both_clips_pointing_at_each_other(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, d = film.clips
    desk.lease(team.ana, a, b, c)
    result = desk.act(K.GROUP, b, team.ana)
    rows = {i: desk.clip(i) for i in (a, b)}
    for clip_id, partner in ((a, b), (b, a)):
        row = rows[clip_id]
        assert row is not None
        assert (row["ingest_state"], row["grouped_with_clip_id"]) == ("review_approved", partner)
        assert row["reviewed_by_user_id"] == team.ana.user_id and row["reviewed_at"] is not None
    assert [desk.state(i) for i in (c, d)] == ["pending_review"] * 2
    assert set(desk.lease_rows()) == {c}
    assert desk.cut_frames(film.video_id) == [100, 200, 300]
    (action,) = desk.actions()
    assert (action["action"], action["clip_ids"], action["cut_ops"]) == ("group", [b, a], [])
    assert {k: (v["state"], v["grouped_with_clip_id"]) for k, v in action["before"].items()} == {
        str(a): ("pending_review", None),
        str(b): ("pending_review", None),
    }
    assert {k: (v["state"], v["grouped_with_clip_id"]) for k, v in action["after"].items()} == {
        str(a): ("review_approved", b),
        str(b): ("review_approved", a),
    }
    assert (result.clip_id, result.changed, result.focus) == (b, (b, a), None)
    desk.assert_consistent(film.video_id)


def test_split_adds_a_reviewer_cut_and_two_halves_leased_to_the_tab(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, d = film.clips
    desk.lease(team.ana, b)
    result = desk.act(K.SPLIT, b, team.ana, frame=SPLIT_AT)
    first, second = live_id(desk, film, 100, 150), live_id(desk, film, 150, 200)
    assert (result.focus, result.clip_id, result.changed) == (first, b, (b, first, second))
    assert desk.live(film.video_id) == [
        (0, 100, "pending_review"),
        (100, 150, "pending_review"),
        (150, 200, "pending_review"),
        (200, 300, "pending_review"),
        (300, 400, "pending_review"),
    ]
    original = desk.clip(b)
    assert original is not None and original["ingest_state"] == "archived"
    assert original["processing_metadata"] == {
        "created_from": "scene_detection",
        "segment_index": 2,
        "archived_reason": "split",
    }
    for part, clip_id, (start, end) in ((1, first, (100, 150)), (2, second, (150, 200))):
        row = desk.clip(clip_id)
        assert row is not None
        assert row["processing_metadata"] == {"created_from": "split", "original_clip_id": b, "part": part}
        assert row["clip_identifier"].startswith(f"{film.video_id}_split_{start}_{end}_")
    (new_cut,) = [cut for cut in desk.cuts(film.video_id) if cut["frame_number"] == SPLIT_AT]
    assert (new_cut["source"], new_cut["score"], new_cut["created_by_user_id"]) == ("reviewer", None, team.ana.user_id)
    assert new_cut["operation_metadata"] == {"split_of": b}
    assert desk.cut_frames(film.video_id) == [100, 150, 200, 300]
    held = desk.lease_rows()
    assert set(held) == {first, second}
    assert {(r["holder"], r["user_id"]) for r in held.values()} == {(team.ana.holder, team.ana.user_id)}
    (action,) = desk.actions()
    assert (action["action"], action["clip_ids"]) == ("split", [b, first, second])
    assert set(action["before"]) == {str(b)} and set(action["after"]) == {str(b), str(first), str(second)}
    assert action["cut_ops"] == [{"op": "add", "frame": SPLIT_AT}]
    assert [desk.state(i) for i in (a, c, d)] == ["pending_review"] * 3
    desk.assert_consistent(film.video_id)


@pytest.mark.parametrize("kind", ACTIONS)
def test_with_the_lease_every_action_is_possible_on_b(
    desk: Desk, team: Team, film: Film, kind: ReviewActionKind
) -> None:
    """The control for the refusals below: each of them fails for its stated reason alone."""
    b = film.clips[1]
    desk.lease(team.ana, b)
    result = desk.run(attempt(kind, b, team.ana))
    assert (result.kind, result.clip_id) == (kind, b)
    assert [a["action"] for a in desk.actions()] == [kind.value]


# --- refusals: the clip itself -------------------------------------------------------------------


def _approved(desk: Desk, team: Team, clip_id: int) -> None:
    desk.lease(team.ana, clip_id)
    desk.act(K.APPROVE, clip_id, team.ana)


def _split_away(desk: Desk, team: Team, clip_id: int) -> None:
    desk.lease(team.ana, clip_id)
    desk.act(K.SPLIT, clip_id, team.ana, frame=120)


def _never_leased(desk: Desk, team: Team, clip_id: int) -> None:
    pass


def _held_by_ben(desk: Desk, team: Team, clip_id: int) -> None:
    desk.lease(team.ben, clip_id)


def _held_by_anas_other_tab(desk: Desk, team: Team, clip_id: int) -> None:
    desk.lease(team.ana_tab2, clip_id)


def _expired(desk: Desk, team: Team, clip_id: int) -> None:
    desk.lease(team.ana, clip_id)
    desk.expire(clip_id)


def _expired_then_taken_over(desk: Desk, team: Team, clip_id: int) -> None:
    _expired(desk, team, clip_id)
    desk.lease(team.ben, clip_id)


CLIP_PROBLEMS: dict[str, tuple[Callable[[Desk, Team, int], None], type[ReviewError], str]] = {
    "already-approved": (_approved, ClipNotPending, "it is review_approved"),
    "archived-by-a-split": (_split_away, ClipNotPending, "it is archived"),
    "never-leased": (_never_leased, NotYourLease, "held by nobody"),
    "held-by-another-reviewer": (_held_by_ben, NotYourLease, "held by someone else"),
    "held-by-the-users-other-tab": (_held_by_anas_other_tab, NotYourLease, "held by someone else"),
    "lease-expired": (_expired, NotYourLease, "held by nobody"),
    "expired-and-taken-over": (_expired_then_taken_over, NotYourLease, "held by someone else"),
}


@pytest.mark.parametrize("problem", list(CLIP_PROBLEMS))
def test_an_action_on_a_clip_not_pending_or_not_held_by_this_tab_is_refused_and_changes_nothing(
    desk: Desk, team: Team, film: Film, problem: str
) -> None:
    """Every kind of action, one after the other on the same rows: a refusal leaves nothing to differ."""
    setup, error, message = CLIP_PROBLEMS[problem]
    b = film.clips[1]
    setup(desk, team, b)
    for kind in ACTIONS:
        refused = desk.refused(error, attempt(kind, b, team.ana), match=message)
        assert refused.clip_id == b, kind


def test_an_action_on_a_clip_that_does_not_exist_is_refused(desk: Desk, team: Team, film: Film) -> None:
    missing = max(film.clips) + 1000
    for kind in ACTIONS:
        desk.refused(ClipGone, attempt(kind, missing, team.ana), match=f"Clip {missing} no longer exists")


# --- refusals: merge and group and the preceding clip --------------------------------------------

PAIRS = [K.MERGE, K.GROUP]


def test_the_first_clip_has_nothing_to_merge_or_group_with(desk: Desk, team: Team, film: Film) -> None:
    a = film.clips[0]
    desk.lease(team.ana, a)
    for kind in PAIRS:
        desk.refused(ActionUnavailable, attempt(kind, a, team.ana), match="No preceding clip in this video")


def test_only_a_live_clip_of_the_same_video_can_precede(desk: Desk, team: Team, film: Film) -> None:
    """Another video's clip ending at the same frame, or an archived clip of this one, is not a neighbour."""
    a, b, _, _ = film.clips
    desk.video([(100, 0.7)], 300, title="other")  # its first clip also ends at frame 100
    desk.set_state(a, "archived")
    desk.lease(team.ana, b)
    for kind in PAIRS:
        desk.refused(ActionUnavailable, attempt(kind, b, team.ana), match="No preceding clip in this video")


@pytest.mark.parametrize("state", ["exporting", "exported", "export_failed", "keyframed", "embedded"])
def test_a_preceding_clip_past_review_cannot_be_merged_or_grouped(
    desk: Desk, team: Team, film: Film, state: str
) -> None:
    a, b, _, _ = film.clips
    desk.set_state(a, state)
    desk.lease(team.ana, b)
    for kind in PAIRS:
        desk.refused(ActionUnavailable, attempt(kind, b, team.ana), match=rf"moved past review \({state}\)")


@pytest.mark.parametrize("other", ["ben", "ana_tab2"])
def test_a_preceding_clip_held_by_another_tab_cannot_be_merged_or_grouped(
    desk: Desk, team: Team, film: Film, other: str
) -> None:
    a, b, _, _ = film.clips
    desk.lease(getattr(team, other), a)
    desk.lease(team.ana, b)
    for kind in PAIRS:
        desk.refused(ActionUnavailable, attempt(kind, b, team.ana), match="being reviewed by someone else")


@pytest.mark.parametrize("kind", PAIRS)
def test_a_preceding_clip_whose_lease_ran_out_is_free_to_merge_or_group(
    desk: Desk, team: Team, film: Film, kind: ReviewActionKind
) -> None:
    a, b, _, _ = film.clips
    desk.lease(team.ben, a)
    desk.expire(a)
    desk.lease(team.ana, b)
    desk.act(kind, b, team.ana)
    assert desk.state(a) in {"archived", "review_approved"} and a not in desk.lease_rows()


def test_a_preceding_clip_already_grouped_cannot_be_merged_or_grouped_again(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, _ = film.clips
    desk.lease(team.ana, b)
    desk.act(K.GROUP, b, team.ana)
    desk.lease(team.ana, c)
    desk.refused(ActionUnavailable, attempt(K.MERGE, c, team.ana), match=f"grouped with clip {a}; undo the group first")
    desk.refused(ActionUnavailable, attempt(K.GROUP, c, team.ana), match=f"already grouped with clip {a}")


def test_merge_needs_the_cut_it_would_remove(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.sql("DELETE FROM cuts WHERE source_video_id = :v AND frame_number = 100", v=film.video_id)
    desk.lease(team.ana, b)
    desk.refused(ActionUnavailable, attempt(K.MERGE, b, team.ana), match="no cut at frame 100")


# --- refusals: split -----------------------------------------------------------------------------


def test_a_split_at_the_first_frame_the_end_or_outside_the_clip_is_refused(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    desk.refused(ActionUnavailable, attempt(K.SPLIT, b, team.ana, frame=100), match="is the clip's first frame")
    for frame in (200, 201, 99, 50, 0, 250, -1):
        desk.refused(
            ActionUnavailable,
            attempt(K.SPLIT, b, team.ana, frame=frame),
            match=rf"Frame {frame:,} is outside this clip \(frames 100 to 199\)",
        )


def test_a_split_without_a_frame_is_refused(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    call = lambda s: service.act(s, K.SPLIT, b, team.ana, lease_seconds=LEASE)  # noqa: E731
    desk.refused(ActionUnavailable, call, match="needs the frame")


# --- undo, one kind at a time --------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "state"), DECISIONS)
def test_undo_of_a_decision_puts_the_clip_back_pending_in_the_undoing_tab(
    desk: Desk, team: Team, film: Film, kind: ReviewActionKind, state: str
) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    before = history(desk)
    desk.act(kind, b, team.ana)
    assert desk.depth(team.ana) == 1
    result = desk.undo(team.ana)
    assert history(desk) == before
    assert desk.holder(b) == team.ana.holder
    assert (result.kind, result.clip_id, result.focus, result.changed, result.removed) == (kind, b, b, (b,), ())
    (action,) = desk.actions()
    assert action["undone_at"] is not None
    assert desk.depth(team.ana) == 0


def test_undo_of_a_decision_from_the_users_other_tab_brings_the_clip_to_that_tab(
    desk: Desk, team: Team, film: Film
) -> None:
    """Undo belongs to the user, not the tab: the tab that asks gets the clip back, whichever tab decided."""
    b = film.clips[1]
    desk.lease(team.ana, b)
    desk.act(K.APPROVE, b, team.ana)
    result = desk.undo(team.ana_tab2)
    assert (result.clip_id, desk.state(b), desk.holder(b)) == (b, "pending_review", team.ana_tab2.holder)


def test_undo_of_a_merge_deletes_the_merged_clip_and_puts_back_the_cut_and_both_parents(
    desk: Desk, team: Team, film: Film
) -> None:
    """Ben had approved the preceding clip: after the undo it is approved by Ben again, at the same time."""
    a, b, _, _ = film.clips
    desk.lease(team.ben, a)
    desk.act(K.APPROVE, a, team.ben)
    desk.run(lambda s: leases.release_holder(s, team.ben.holder))  # Ben's tab closed
    desk.lease(team.ana, b)
    before = history(desk)
    merged = desk.act(K.MERGE, b, team.ana).focus
    assert merged is not None
    result = desk.undo(team.ana)
    assert history(desk) == before  # same rows, same cut (frame, source, score, metadata), same reviewed_at
    assert desk.clip(merged) is None
    assert desk.state(a) == "review_approved" and desk.state(b) == "pending_review"
    assert desk.holder(b) == team.ana.holder and desk.holder(a) is None
    assert (result.kind, result.clip_id, result.changed, result.removed) == (K.MERGE, b, (b, a), (merged,))
    assert desk.depth(team.ana) == 0 and desk.depth(team.ben) == 1
    desk.assert_consistent(film.video_id)


def test_undo_of_a_group_ungroups_both_and_restores_their_earlier_states(desk: Desk, team: Team, film: Film) -> None:
    """Ben had skipped the preceding clip; the group approved it; the undo makes it Ben's skip again."""
    a, b, _, _ = film.clips
    desk.lease(team.ben, a)
    desk.act(K.SKIP, a, team.ben)
    desk.run(lambda s: leases.release_holder(s, team.ben.holder))
    desk.lease(team.ana, b)
    before = history(desk)
    desk.act(K.GROUP, b, team.ana)
    result = desk.undo(team.ana)
    assert history(desk) == before
    assert desk.state(a) == "review_skipped" and desk.state(b) == "pending_review"
    assert desk.holder(b) == team.ana.holder
    assert (result.kind, result.clip_id, result.changed, result.removed) == (K.GROUP, b, (b, a), ())
    desk.assert_consistent(film.video_id)


def test_undo_of_a_split_deletes_the_halves_and_the_cut_and_restores_the_clip(
    desk: Desk, team: Team, film: Film
) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    before = history(desk)
    desk.act(K.SPLIT, b, team.ana, frame=SPLIT_AT)
    halves = (live_id(desk, film, 100, 150), live_id(desk, film, 150, 200))
    result = desk.undo(team.ana)
    assert history(desk) == before
    assert all(desk.clip(h) is None for h in halves)
    assert set(desk.lease_rows()) == {b} and desk.holder(b) == team.ana.holder
    assert (result.kind, result.clip_id, result.changed, result.removed) == (K.SPLIT, b, (b,), halves)
    desk.assert_consistent(film.video_id)


# --- undo, several levels and several users ------------------------------------------------------


def test_undo_walks_back_every_kind_of_action_in_reverse_order(desk: Desk, team: Team) -> None:
    film = desk.video([(100, 0.8), (200, 0.5), (300, 0.9), (400, 0.3)], 500)
    a, b, c, d, e = film.clips
    desk.lease(team.ana, *film.clips)
    steps: list[tuple[ReviewActionKind, Callable[[], int], int | None]] = [
        (K.APPROVE, lambda: a, None),
        (K.SPLIT, lambda: c, 250),
        (K.MERGE, lambda: live_id(desk, film, 250, 300), None),  # the second half back onto the first
        (K.SKIP, lambda: b, None),
        (K.GROUP, lambda: d, None),  # D with the merged clip before it
        (K.ARCHIVE, lambda: e, None),
    ]
    states: list[dict[str, list[dict[str, Any]]]] = []
    for kind, target, frame in steps:
        states.append(history(desk))
        desk.act(kind, target(), team.ana, frame=frame)
        desk.assert_consistent(film.video_id)
    assert desk.depth(team.ana) == len(steps)
    for depth, (kind, _, _) in reversed(list(enumerate(steps))):
        result = desk.undo(team.ana)
        assert result.kind is kind
        assert history(desk) == states[depth]
        assert desk.state(result.clip_id) == "pending_review" and desk.holder(result.clip_id) == team.ana.holder
        assert desk.depth(team.ana) == depth
        desk.assert_consistent(film.video_id)
    desk.refused(NothingToUndo, undo(team.ana), match="Nothing to undo")


def test_each_user_undoes_only_their_own_actions(desk: Desk, team: Team, film: Film) -> None:
    a, b, c, d = film.clips
    desk.lease(team.ana, a, b)
    desk.lease(team.ben, c, d)
    desk.act(K.APPROVE, a, team.ana)
    desk.act(K.APPROVE, c, team.ben)
    desk.act(K.SKIP, b, team.ana)
    desk.act(K.SKIP, d, team.ben)  # Ben acted last, but Ana's undo is about Ana's actions
    assert (desk.undo(team.ana).clip_id, desk.state(b)) == (b, "pending_review")
    assert (desk.undo(team.ana).clip_id, desk.state(a)) == (a, "pending_review")
    assert (desk.state(c), desk.state(d)) == ("review_approved", "review_skipped")
    desk.refused(NothingToUndo, undo(team.ana))
    assert desk.depth(team.ben) == 2
    assert [(r["user_id"], r["undone_at"] is None) for r in desk.actions()] == [
        (team.ana.user_id, False),
        (team.ben.user_id, True),
        (team.ana.user_id, False),
        (team.ben.user_id, True),
    ]
    assert desk.undo(team.ben).clip_id == d and desk.holder(d) == team.ben.holder


def test_undo_with_nothing_to_undo_changes_nothing(desk: Desk, team: Team, film: Film) -> None:
    desk.lease(team.ana, film.clips[0])
    desk.act(K.APPROVE, film.clips[0], team.ana)  # somebody else's history is not Ben's
    desk.refused(NothingToUndo, undo(team.ben), match="Nothing to undo")
    assert desk.depth(team.ben) == 0


def _moved_clip(desk: Desk, film: Film, kind: ReviewActionKind, result: service.ActionResult) -> int:
    if kind is K.MERGE:
        assert result.focus is not None
        return result.focus
    if kind is K.SPLIT:
        return live_id(desk, film, SPLIT_AT, 200)
    return film.clips[1]


@pytest.mark.parametrize("kind", ACTIONS)
def test_undo_is_refused_once_a_clip_it_would_change_has_started_export(
    desk: Desk, team: Team, film: Film, kind: ReviewActionKind
) -> None:
    """The clip the action decided or made moves to `exporting` (behind the service's back): the decision stands."""
    b = film.clips[1]
    desk.lease(team.ana, b)
    result = desk.run(attempt(kind, b, team.ana))
    desk.set_state(_moved_clip(desk, film, kind, result), "exporting")
    desk.refused(UndoRefused, undo(team.ana), match="(moved on|reviewed) since")
    assert desk.depth(team.ana) == 1


def test_undo_of_a_group_is_refused_once_the_preceding_clip_started_export(desk: Desk, team: Team, film: Film) -> None:
    a, b, _, _ = film.clips
    desk.lease(team.ana, b)
    desk.act(K.GROUP, b, team.ana)
    desk.set_state(a, "exporting")
    desk.refused(UndoRefused, undo(team.ana), match=f"clip {a} has moved on since \\(it is exporting\\)")


def test_undo_of_a_split_is_refused_once_a_half_was_reviewed_and_allowed_again_after_that_is_undone(
    desk: Desk, team: Team, film: Film
) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    desk.act(K.SPLIT, b, team.ana, frame=SPLIT_AT)
    first = live_id(desk, film, 100, SPLIT_AT)
    desk.run(lambda s: leases.release_holder(s, team.ana.holder))  # Ana's tab closed
    desk.lease(team.ben, first)
    desk.act(K.APPROVE, first, team.ben)
    desk.refused(UndoRefused, undo(team.ana), match=f"clip {first} that it made has been reviewed since")
    desk.undo(team.ben)
    desk.run(lambda s: leases.release_holder(s, team.ben.holder))
    assert desk.undo(team.ana).kind is K.SPLIT
    assert desk.live(film.video_id)[1] == (100, 200, "pending_review")
    desk.assert_consistent(film.video_id)


def test_undo_of_a_merge_is_refused_while_another_tab_holds_the_merged_clip(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    merged = desk.act(K.MERGE, b, team.ana).focus
    assert merged is not None
    desk.run(lambda s: leases.release_holder(s, team.ana.holder))
    desk.lease(team.ben, merged)
    desk.refused(UndoRefused, undo(team.ana), match="being reviewed by someone else")


def test_undo_of_an_approval_is_refused_once_another_reviewer_merged_the_clip_away(
    desk: Desk, team: Team, film: Film
) -> None:
    a, b, _, _ = film.clips
    desk.lease(team.ana, a)
    desk.act(K.APPROVE, a, team.ana)
    desk.run(lambda s: leases.release_holder(s, team.ana.holder))  # Ana's tab closed
    desk.lease(team.ben, b)
    desk.act(K.MERGE, b, team.ben)
    desk.refused(UndoRefused, undo(team.ana), match=f"clip {a} has moved on since \\(it is archived\\)")


def test_undo_of_an_approval_leaves_a_group_made_on_it_since_intact(desk: Desk, team: Team, film: Film) -> None:
    """Ana approves A; Ben groups B with A. Ana's undo must not turn A back to pending under Ben's group
    (B would point at a pending clip that points nowhere): it should be refused, like any later change."""
    a, b, _, _ = film.clips
    desk.lease(team.ana, a)
    desk.act(K.APPROVE, a, team.ana)
    desk.run(lambda s: leases.release_holder(s, team.ana.holder))  # Ana's tab closed
    desk.lease(team.ben, b)
    desk.act(K.GROUP, b, team.ben)
    before = desk.snapshot()
    with contextlib.suppress(UndoRefused):
        desk.undo(team.ana)
    desk.assert_consistent(film.video_id)  # names the half group if there is one
    assert desk.snapshot() == before


# --- the no-overlap constraint through split, merge and undo ----------------------------------------


def test_split_then_merge_the_halves_back_then_undo_both(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    start = history(desk)
    desk.act(K.SPLIT, b, team.ana, frame=SPLIT_AT)
    after_split = history(desk)
    merged = desk.act(K.MERGE, live_id(desk, film, SPLIT_AT, 200), team.ana).focus
    assert merged is not None and live_id(desk, film, 100, 200) == merged
    assert desk.cut_frames(film.video_id) == [100, 200, 300]
    desk.assert_consistent(film.video_id)
    desk.undo(team.ana)
    assert history(desk) == after_split  # the reviewer's cut is back, as the split made it
    desk.assert_consistent(film.video_id)
    desk.undo(team.ana)
    assert history(desk) == start
    desk.assert_consistent(film.video_id)


def test_merge_then_split_the_merged_clip_at_the_old_cut_then_undo_both(desk: Desk, team: Team, film: Film) -> None:
    b = film.clips[1]
    desk.lease(team.ana, b)
    start = history(desk)
    merged = desk.act(K.MERGE, b, team.ana).focus
    assert merged is not None
    desk.act(K.SPLIT, merged, team.ana, frame=100)
    assert [c["source"] for c in desk.cuts(film.video_id)] == ["reviewer", "scene_detection", "scene_detection"]
    desk.assert_consistent(film.video_id)
    desk.undo(team.ana)
    desk.assert_consistent(film.video_id)
    desk.undo(team.ana)
    assert history(desk) == start
    desk.assert_consistent(film.video_id)


def test_chained_merges_and_splits_of_halves_unwind_to_the_start(desk: Desk, team: Team, film: Film) -> None:
    _, b, c, _ = film.clips
    desk.lease(team.ana, b, c)
    start = history(desk)
    first = desk.act(K.MERGE, b, team.ana).focus  # [0, 200)
    assert first is not None
    desk.act(K.MERGE, c, team.ana)  # [0, 300)
    whole = live_id(desk, film, 0, 300)
    desk.act(K.SPLIT, whole, team.ana, frame=10)
    desk.act(K.SPLIT, live_id(desk, film, 10, 300), team.ana, frame=290)
    assert desk.live(film.video_id)[:3] == [
        (0, 10, "pending_review"),
        (10, 290, "pending_review"),
        (290, 300, "pending_review"),
    ]
    desk.assert_consistent(film.video_id)
    for _ in range(4):
        desk.undo(team.ana)
        desk.assert_consistent(film.video_id)
    assert history(desk) == start


def test_a_long_mixed_session_keeps_every_invariant(desk: Desk, team: Team) -> None:
    """A fixed pseudo-random walk of actions and undos from Ana's two tabs: no step may trip the no-overlap
    constraint (an IntegrityError fails the test), a refusal changes nothing, and after every step the live
    clips tile the video with the cuts as their boundaries."""
    film = desk.video([(60, 0.4), (130, 0.9), (200, 0.2), (290, 0.7), (350, 0.5)], 420)
    rng = random.Random(20240611)
    tabs = [team.ana, team.ana_tab2]
    done = refused = 0
    for _ in range(120):
        tab = rng.choice(tabs)
        if rng.random() < 0.25:
            call: Callable[[Session], object] = undo(tab)
        else:
            pending = [i for i in desk.live_ids(film.video_id) if desk.state(i) == "pending_review"]
            if not pending:
                continue
            clip_id = rng.choice(pending)
            kind = rng.choice([K.SPLIT, K.SPLIT, K.MERGE, K.MERGE, K.GROUP, K.APPROVE, K.SKIP, K.ARCHIVE])
            row = desk.clip(clip_id)
            assert row is not None
            frame = rng.randint(row["start_frame"], row["end_frame"]) if kind is K.SPLIT else None
            with contextlib.suppress(NotYourLease):  # the other tab has it: the action is refused for that
                desk.lease(tab, clip_id)
            call = attempt(kind, clip_id, tab, frame=frame)
        before = desk.snapshot()
        try:
            desk.run(call)
            done += 1
        except ReviewError:
            refused += 1
            assert desk.snapshot() == before
        desk.assert_consistent(film.video_id)
    assert done > 40 and refused > 5  # the walk really exercised both paths
