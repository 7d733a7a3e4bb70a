"""Segments from cuts, short-segment merging and identifiers: pure functions, no I/O."""

from __future__ import annotations

import math
import random
import time
from itertools import pairwise

import pytest

from heaters.clips.segments import merge_short_segments, segment_identifier, segments_from_cuts
from heaters.media.scenes import DetectedCut


def _covers(segments: list[tuple[int, int]], frame_count: int) -> bool:
    return (
        segments[0][0] == 0
        and segments[-1][1] == frame_count
        and all(a[1] == b[0] for a, b in pairwise(segments))
        and all(start < end for start, end in segments)
    )


# ---- segments_from_cuts ----------------------------------------------------------------------------------


def test_segments_are_half_open_with_implicit_start_and_end() -> None:
    assert segments_from_cuts([30, 75], 100) == [(0, 30), (30, 75), (75, 100)]


def test_no_cuts_is_one_segment() -> None:
    assert segments_from_cuts([], 100) == [(0, 100)]
    assert segments_from_cuts([], 1) == [(0, 1)]


def test_cuts_are_sorted_and_deduplicated() -> None:
    assert segments_from_cuts([75, 30, 75], 100) == [(0, 30), (30, 75), (75, 100)]


@pytest.mark.parametrize("cuts", [[0], [100], [101], [-5], [50, 100]])
def test_cuts_outside_the_video_are_a_bug(cuts: list[int]) -> None:
    with pytest.raises(ValueError, match=r"strictly inside \(0, 100\)"):
        segments_from_cuts(cuts, 100)


def test_frame_count_must_be_positive() -> None:
    with pytest.raises(ValueError):
        segments_from_cuts([], 0)


# ---- merge_short_segments --------------------------------------------------------------------------------


def _frames(cuts: list[tuple[int, float]]) -> list[int]:
    return [frame for frame, _ in cuts]


def test_nothing_short_keeps_every_cut() -> None:
    cuts = [(30, 5.0), (75, 4.0)]
    assert merge_short_segments(cuts, 100, min_len=10) == cuts


def test_short_middle_segment_loses_its_weaker_boundary() -> None:
    # segments [0,40) [40,45) [45,100): the 5-frame one merges across the weaker of 40 and 45
    assert _frames(merge_short_segments([(40, 9.0), (45, 3.0)], 100, min_len=10)) == [40]
    assert _frames(merge_short_segments([(40, 3.0), (45, 9.0)], 100, min_len=10)) == [45]


def test_equal_scores_make_the_shorter_merged_segment() -> None:
    # [0,20) [20,25) [25,100): dropping 20 gives [0,25) (25 frames), dropping 25 gives [20,100) (80)
    assert _frames(merge_short_segments([(20, 5.0), (25, 5.0)], 100, min_len=10)) == [25]
    # mirror image: [0,75) [75,80) [80,100) -> dropping 80 gives [75,100) (25), dropping 75 gives 80
    assert _frames(merge_short_segments([(75, 5.0), (80, 5.0)], 100, min_len=10)) == [75]


def test_short_first_and_last_segments_merge_inward() -> None:
    assert _frames(merge_short_segments([(3, 100.0), (50, 1.0)], 100, min_len=10)) == [50]
    # The original's bug: a short final segment must not cost the last real cut.
    assert _frames(merge_short_segments([(50, 1.0), (97, 100.0)], 100, min_len=10)) == [50]


def test_runs_of_short_segments_merge_until_long_enough() -> None:
    cuts = [(10, 1.0), (14, 2.0), (18, 3.0), (22, 4.0), (60, 9.0)]
    kept = merge_short_segments(cuts, 100, min_len=10)
    segments = segments_from_cuts(_frames(kept), 100)
    assert _covers(segments, 100)
    assert all(end - start >= 10 for start, end in segments)
    assert (60, 9.0) in kept  # the strong, well-separated cut survives


def test_a_video_shorter_than_the_minimum_becomes_one_segment() -> None:
    assert merge_short_segments([(3, 1.0), (6, 1.0)], 8, min_len=10) == []


def test_nan_scores_count_as_weakest() -> None:
    assert _frames(merge_short_segments([(40, math.nan), (45, 0.1)], 100, min_len=10)) == [45]


def test_min_len_of_one_or_less_changes_nothing() -> None:
    assert merge_short_segments([(1, 0.0), (2, 0.0)], 3, min_len=1) == [(1, 0.0), (2, 0.0)]


def test_detected_cuts_go_in_and_come_out_as_they_are() -> None:
    cuts = [DetectedCut(37, 13.0), DetectedCut(40, 4.0), DetectedCut(90, 20.0)]
    kept = merge_short_segments(cuts, 120, min_len=12)
    assert kept == [DetectedCut(37, 13.0), DetectedCut(90, 20.0)]
    assert all(isinstance(cut, DetectedCut) for cut in kept)


def test_merging_always_covers_the_video_exactly() -> None:
    rng = random.Random(8)
    for _ in range(500):
        frame_count = rng.randint(1, 400)
        count = rng.randint(0, min(40, frame_count - 1))
        frames = rng.sample(range(1, frame_count), count) if frame_count > 1 else []
        cuts = [(f, rng.choice([rng.random(), 1.0, math.nan])) for f in frames]
        min_len = rng.randint(0, 60)
        kept = merge_short_segments(cuts, frame_count, min_len)
        assert set(kept) <= set(cuts) and _frames(kept) == sorted(_frames(kept))
        segments = segments_from_cuts(_frames(kept), frame_count)
        assert _covers(segments, frame_count)
        if len(segments) > 1:
            assert all(end - start >= min_len for start, end in segments)
        if min_len <= 1:  # no minimum, nothing to merge
            assert len(kept) == len(cuts)


def test_many_cuts_merge_quickly() -> None:
    rng = random.Random(1)
    frame_count = 3 * 3600 * 30  # three hours at 30 fps
    cuts = [(f, rng.random()) for f in sorted(rng.sample(range(1, frame_count), 20_000))]
    started = time.monotonic()
    kept = merge_short_segments(cuts, frame_count, min_len=15)
    assert time.monotonic() - started < 2
    assert _covers(segments_from_cuts(_frames(kept), frame_count), frame_count)


# ---- identifiers -----------------------------------------------------------------------------------------


def test_segment_identifier() -> None:
    assert segment_identifier(42, 1) == "42_segment_001"
    assert segment_identifier("abc", 12) == "abc_segment_012"
    assert segment_identifier(7, 1234) == "7_segment_1234"
    with pytest.raises(ValueError):
        segment_identifier(42, 0)
