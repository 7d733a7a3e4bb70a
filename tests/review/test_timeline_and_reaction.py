"""The timeline's changes and how a tab reacts to other reviewers' actions: pure, no database."""

from __future__ import annotations

import json
from typing import Any

from heaters.review import queue
from heaters.review.timeline import Timeline

ME, OTHER = "me-tag", "other-tag"


def _timeline() -> Timeline:
    return Timeline.from_rows(
        {
            "video_id": 7,
            "frame_count": 300,
            "clips": [
                {"id": 1, "start_frame": 0, "end_frame": 100, "state": "pending_review"},
                {"id": 2, "start_frame": 100, "end_frame": 200, "state": "pending_review"},
                {"id": 3, "start_frame": 200, "end_frame": 300, "state": "review_approved"},
            ],
            "cuts": [{"frame": 100, "score": 40.0, "source": "scene_detection"}, {"frame": 200, "score": 20.0}],
        }
    )


def _event(**changes: Any) -> dict[str, Any]:
    return {"type": "clips.changed", "video_id": 7, "actor": OTHER, "clips": [], "removed": [], **changes}


def test_a_merge_replaces_two_segments_with_one_and_drops_the_cut() -> None:
    merged = _timeline().apply(
        _event(
            clips=[
                {"id": 1, "start_frame": 0, "end_frame": 100, "state": "archived"},
                {"id": 2, "start_frame": 100, "end_frame": 200, "state": "archived"},
                {"id": 9, "start_frame": 0, "end_frame": 200, "state": "pending_review"},
            ],
            cuts_removed=[100],
        )
    )
    assert merged.clips == ((9, 0, 200, "pending_review"), (3, 200, 300, "review_approved"))
    assert [c[0] for c in merged.cuts] == [200]
    assert merged.position(3) == (2, 2)


def test_an_undone_split_removes_the_halves_and_its_cut_and_restores_the_clip() -> None:
    split = _timeline().apply(
        _event(
            clips=[
                {"id": 2, "start_frame": 100, "end_frame": 200, "state": "archived"},
                {"id": 5, "start_frame": 100, "end_frame": 150, "state": "pending_review"},
                {"id": 6, "start_frame": 150, "end_frame": 200, "state": "pending_review"},
            ],
            cuts_added=[{"frame": 150, "score": None, "source": "reviewer"}],
        )
    )
    assert [c[0] for c in split.clips] == [1, 5, 6, 3] and [c[0] for c in split.cuts] == [100, 150, 200]
    undone = split.apply(
        _event(
            clips=[{"id": 2, "start_frame": 100, "end_frame": 200, "state": "pending_review"}],
            removed=[5, 6],
            cuts_removed=[150],
        )
    )
    assert undone == _timeline()


def test_another_videos_event_changes_nothing() -> None:
    timeline = _timeline()
    assert (
        timeline.apply({**_event(clips=[{"id": 1, "start_frame": 0, "end_frame": 9, "state": "x"}]), "video_id": 8})
        is timeline
    )


def test_the_encoding_is_what_the_browser_draws() -> None:
    data = json.loads(_timeline().encode())
    assert data == {
        "n": 300,
        "c": [[1, 0, 100, "pending"], [2, 100, 200, "pending"], [3, 200, 300, "approved"]],
        "k": [[100, 40.0, 0], [200, 20.0, 0]],
    }
    assert Timeline().encode() == ""


def _cards() -> dict[int, dict[str, Any]]:
    row = {
        "id": 2, "video_id": 7, "start_frame": 100, "end_frame": 200, "state": "pending_review",
        "identifier": "x", "title": "t", "fps_num": 25, "fps_den": 1, "frame_count": 300,
        "prev_id": 1, "prev_state": "pending_review", "prev_grouped": None, "prev_held_by_other": True,
        "prev_start": 0, "prev_end": 100, "next_id": 3, "next_state": "review_approved", "next_start": 200,
        "next_end": 300, "start_cut": True, "start_score": 40.0, "end_score": 20.0, "position": 2, "clip_total": 3,
    }  # fmt: skip
    return {2: queue.card(row)}


def test_a_neighbour_decided_by_another_reviewer_updates_merge_and_group_in_place() -> None:
    cards = _cards()
    assert "someone else" in cards[2]["merge_problem"]
    event = _event(
        clips=[{"id": 1, "start_frame": 0, "end_frame": 100, "state": "review_approved", "grouped_with": None}]
    )
    updated, reload = queue.reaction(cards, [2], event, ME)
    assert not reload
    assert updated[2]["prev_state"] == "review_approved"
    assert updated[2]["merge_problem"] == "" and updated[2]["group_problem"] == ""
    assert cards[2]["merge_problem"] != ""  # the input is not changed


def test_a_neighbour_taken_back_by_another_reviewers_undo_is_held_by_them() -> None:
    event = _event(clips=[{"id": 1, "start_frame": 0, "end_frame": 100, "state": "pending_review", "held_by": OTHER}])
    updated, reload = queue.reaction(_cards(), [2], event, ME)
    assert not reload and "someone else" in updated[2]["group_problem"]


def test_structural_changes_next_to_a_queued_clip_need_the_database() -> None:
    split_before = _event(
        clips=[
            {"id": 1, "start_frame": 0, "end_frame": 100, "state": "archived"},
            {"id": 8, "start_frame": 50, "end_frame": 100, "state": "pending_review"},
        ]
    )
    assert queue.reaction(_cards(), [2], split_before, ME)[1]
    own_clip_changed = _event(clips=[{"id": 2, "start_frame": 100, "end_frame": 200, "state": "review_skipped"}])
    assert queue.reaction(_cards(), [2], own_clip_changed, ME)[1]
    unrelated = _event(clips=[{"id": 40, "start_frame": 900, "end_frame": 950, "state": "review_skipped"}])
    assert queue.reaction(_cards(), [2], unrelated, ME) == (_cards(), False)
