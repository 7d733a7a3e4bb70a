"""The pure parts of review: when merge, group and split are possible, new names, slots, and cards."""

from __future__ import annotations

import re
from typing import Any

import pytest

from heaters.review import queue, rules, slots
from heaters.review.rules import Neighbour

FREE = Neighbour(id=7, state="pending_review", held_by_other=False, grouped_with=None)


def _neighbour(**changes: Any) -> Neighbour:
    return Neighbour(**{"id": 7, "state": "pending_review", "held_by_other": False, "grouped_with": None, **changes})


# --- merge and group -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending_review", "review_approved", "review_skipped", "review_archived"])
def test_merge_and_group_are_possible_with_a_free_preceding_clip_still_in_review(state: str) -> None:
    preceding = _neighbour(state=state)
    assert rules.merge_problem(100, preceding, cut_exists=True) is None
    assert rules.group_problem(100, preceding) is None


@pytest.mark.parametrize(
    ("start", "preceding", "problem"),
    [
        (0, FREE, "No preceding clip in this video."),  # the first clip has nothing before it, whatever is passed
        (100, None, "No preceding clip in this video."),
        (100, _neighbour(state="exporting"), "The preceding clip 7 has moved past review (exporting)."),
        (100, _neighbour(state="exported"), "The preceding clip 7 has moved past review (exported)."),
        (100, _neighbour(state="archived"), "The preceding clip 7 has moved past review (archived)."),
        (100, _neighbour(held_by_other=True), "The preceding clip 7 is being reviewed by someone else."),
    ],
)
def test_merge_and_group_share_the_preceding_clip_problems(
    start: int, preceding: Neighbour | None, problem: str
) -> None:
    assert rules.merge_problem(start, preceding, cut_exists=True) == problem
    assert rules.group_problem(start, preceding) == problem


def test_a_grouped_preceding_clip_blocks_merge_and_group_with_their_own_advice() -> None:
    grouped = _neighbour(state="review_approved", grouped_with=3)
    assert rules.merge_problem(100, grouped, cut_exists=True) == (
        "The preceding clip 7 is grouped with clip 3; undo the group first."
    )
    assert rules.group_problem(100, grouped) == "The preceding clip 7 is already grouped with clip 3."


def test_merge_needs_a_cut_to_remove_but_group_does_not() -> None:
    assert rules.merge_problem(1234, FREE, cut_exists=False) == "There is no cut at frame 1234 to remove."
    assert rules.group_problem(1234, FREE) is None


def test_problems_are_reported_in_order_the_most_basic_first() -> None:
    """A clip past review that is also held and grouped reports the state: the one thing that settles it."""
    everything_wrong = _neighbour(state="exporting", held_by_other=True, grouped_with=3)
    assert "moved past review" in (rules.merge_problem(100, everything_wrong, cut_exists=False) or "")
    held_and_grouped = _neighbour(held_by_other=True, grouped_with=3)
    assert "someone else" in (rules.group_problem(100, held_and_grouped) or "")
    assert "undo the group" in (rules.merge_problem(100, _neighbour(grouped_with=3), cut_exists=False) or "")


# --- split ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [101, 150, 199])
def test_a_split_anywhere_strictly_inside_the_clip_is_fine(frame: int) -> None:
    assert rules.split_problem(100, 200, frame) is None


def test_a_one_frame_piece_is_still_a_clip() -> None:
    assert rules.split_problem(0, 2, 1) is None
    assert rules.split_problem(0, 1, 0) is not None  # a one-frame clip cannot be split at all


def test_a_split_at_the_first_frame_says_to_step_in() -> None:
    assert rules.split_problem(1000, 2000, 1000) == (
        "Frame 1,000 is the clip's first frame: step at least one frame in to split."
    )


@pytest.mark.parametrize("frame", [200, 201, 99, 0, -5, 10_000])
def test_a_split_at_the_end_or_outside_names_the_clips_frames(frame: int) -> None:
    assert rules.split_problem(100, 200, frame) == f"Frame {frame:,} is outside this clip (frames 100 to 199)."


# --- identifiers ---------------------------------------------------------------------------------


def test_new_identifiers_name_the_video_kind_and_range_and_never_repeat() -> None:
    names = {rules.new_identifier(12, "split", 100, 150) for _ in range(200)}
    assert len(names) == 200
    assert all(re.fullmatch(r"12_split_100_150_[0-9a-f]{6}", name) for name in names)
    assert rules.new_identifier(3, "merged", 0, 400).startswith("3_merged_0_400_")


# --- slots ---------------------------------------------------------------------------------------


def test_slots_fill_in_queue_order_from_empty() -> None:
    assert slots.assign([], [11, 12, 13], 4) == [11, 12, 13, slots.EMPTY]


def test_a_clip_that_stays_queued_keeps_its_slot_and_new_ones_take_the_free_slots() -> None:
    """Advancing must not move a preloaded clip to another <video> element (that would reload it)."""
    previous = [11, 12, 13, 14]
    assert slots.assign(previous, [12, 13, 14, 15], 4) == [15, 12, 13, 14]
    assert slots.assign([15, 12, 13, 14], [13, 14, 16, 17], 4) == [16, 17, 13, 14]


def test_slots_take_at_most_size_clips_and_ignore_duplicates() -> None:
    assert slots.assign([], [5, 5, 6, 7, 8], 3) == [5, 6, 7]
    assert slots.assign([1, 2, 3, 4, 5], [5, 9], 2) == [5, 9]  # 5 was past the new size: placed again, in order


def test_slots_empty_when_the_queue_empties() -> None:
    assert slots.assign([1, 2, 3], [], 3) == [slots.EMPTY] * 3
    assert slots.assign([1, 2], [2], 4) == [slots.EMPTY, 2, slots.EMPTY, slots.EMPTY]


@pytest.mark.parametrize("size", [0, -1])
def test_slots_need_at_least_one_element(size: int) -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        slots.assign([], [1], size)


# --- cards ---------------------------------------------------------------------------------------


def _row(**changes: Any) -> dict[str, Any]:
    """A row of the cards query: clip 2 [100, 200) of a 400-frame 25 fps video, preceded and followed."""
    return {
        "id": 2,
        "video_id": 9,
        "start_frame": 100,
        "end_frame": 200,
        "state": "pending_review",
        "identifier": "9_seg_2",
        "title": "Holiday",
        "fps_num": 25,
        "fps_den": 1,
        "frame_count": 400,
        "prev_id": 1,
        "prev_state": "pending_review",
        "prev_grouped": None,
        "prev_held_by_other": False,
        "prev_start": 0,
        "prev_end": 100,
        "next_id": 3,
        "next_state": "review_approved",
        "next_start": 200,
        "next_end": 300,
        "start_cut": True,
        "start_score": 0.8,
        "end_score": 0.456,
        "position": 2,
        "clip_total": 4,
        **changes,
    }


def test_a_card_carries_everything_the_page_shows() -> None:
    assert queue.card(_row()) == {
        "id": 2,
        "video_id": 9,
        "title": "Holiday",
        "identifier": "9_seg_2",
        "start_frame": 100,
        "end_frame": 200,
        "frames": 100,
        "fps_num": 25,
        "fps_den": 1,
        "duration": "4.00 s",
        "position": 2,
        "clip_total": 4,
        "prev_id": 1,
        "prev_state": "pending_review",
        "prev_grouped": None,
        "prev_held_by_other": False,
        "start_cut": True,
        "prev_frames": 100,
        "next_id": 3,
        "next_state": "review_approved",
        "start_score": "0.80",
        "end_score": "0.46",
        "merge_problem": "",
        "group_problem": "",
    }


def test_a_card_keeps_fps_exact_and_reduces_it() -> None:
    ntsc = queue.card(_row(fps_num=30000, fps_den=1001))
    assert (ntsc["fps_num"], ntsc["fps_den"], ntsc["duration"]) == (30000, 1001, "3.34 s")
    doubled = queue.card(_row(fps_num=50, fps_den=2))
    assert (doubled["fps_num"], doubled["fps_den"]) == (25, 1)


def test_a_card_without_fps_has_no_duration() -> None:
    card = queue.card(_row(fps_num=None, fps_den=None))
    assert (card["fps_num"], card["fps_den"], card["duration"]) == (0, 1, "")


def test_the_first_clip_has_no_neighbour_before_it_no_start_score_and_cannot_merge() -> None:
    card = queue.card(
        _row(
            start_frame=0,
            end_frame=100,
            prev_id=None,
            prev_state=None,
            prev_start=None,
            prev_end=None,
            start_cut=False,
            start_score=0.3,  # whatever the row says: frame 0 is no cut, so it has no score
        )
    )
    assert (card["prev_id"], card["prev_state"], card["prev_frames"], card["start_score"]) == (0, "", 0, "")
    assert card["merge_problem"] == card["group_problem"] == "No preceding clip in this video."


def test_the_last_clip_has_no_end_score_or_next_neighbour() -> None:
    card = queue.card(_row(start_frame=300, end_frame=400, next_id=None, next_state=None, end_score=0.3))
    assert (card["next_id"], card["next_state"], card["end_score"]) == (0, "", "")
    assert queue.card(_row(frame_count=None))["end_score"] == ""  # frame count unknown: no end to score


def test_a_cut_without_a_score_shows_no_score() -> None:
    assert queue.card(_row(start_score=None))["start_score"] == ""


@pytest.mark.parametrize(
    ("changes", "merge", "group"),
    [
        ({"prev_held_by_other": True}, "being reviewed by someone else", "being reviewed by someone else"),
        ({"prev_held_by_other": None}, "", ""),  # no live lease on the preceding clip: SQL gives NULL
        ({"prev_state": "exporting"}, "moved past review (exporting)", "moved past review (exporting)"),
        ({"prev_grouped": 5}, "grouped with clip 5; undo the group first", "already grouped with clip 5"),
        ({"start_cut": False}, "no cut at frame 100", ""),
    ],
)
def test_a_card_says_why_merge_or_group_is_not_possible(changes: dict[str, Any], merge: str, group: str) -> None:
    card = queue.card(_row(**changes))
    assert (merge in card["merge_problem"]) and (bool(card["merge_problem"]) == bool(merge))
    assert (group in card["group_problem"]) and (bool(card["group_problem"]) == bool(group))
