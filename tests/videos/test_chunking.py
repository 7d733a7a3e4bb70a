"""The chunk plan and the progressive release of clips: pure functions, checked against the single pass."""

from __future__ import annotations

import math
import random
import re
from itertools import pairwise

import pytest

from heaters.clips.segments import merge_short_segments, segments_from_cuts
from heaters.errors import PermanentError
from heaters.media.scenes import DetectedCut
from heaters.videos.chunking import ChunkState, check_contiguous, plan_chunks, release, scanned_prefix

# ---- plan_chunks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "chunk", "plan"),
    [
        (300, 100, [(0, 100), (100, 200), (200, None)]),  # an exact multiple: the last one is open-ended
        (100, 100, [(0, None)]),
        (50, 100, [(0, None)]),  # shorter than one chunk
        (1, 100, [(0, None)]),
        (0, 100, [(0, None)]),  # nothing known: still one chunk, which reads to the end
        (301, 100, [(0, 100), (100, 200), (200, 300), (300, None)]),  # one frame over: a last chunk of 1 frame
        (299, 100, [(0, 100), (100, 200), (200, None)]),
        (5, 1, [(0, 1), (1, 2), (2, 3), (3, 4), (4, None)]),
    ],
)
def test_plan_chunks(expected: int, chunk: int, plan: list[tuple[int, int | None]]) -> None:
    assert plan_chunks(expected, chunk) == plan


def test_plans_tile_the_video() -> None:
    rng = random.Random(3)
    for _ in range(500):
        expected, chunk = rng.randint(0, 5000), rng.randint(1, 700)
        plan = plan_chunks(expected, chunk)
        assert len(plan) == max(1, math.ceil(max(1, expected) / chunk))
        assert plan[0][0] == 0 and plan[-1][1] is None
        for (start, end), (next_start, _) in pairwise(plan):
            assert end == next_start == start + chunk
        assert plan[-1][0] < max(1, expected)  # the open-ended chunk starts inside the estimate


def test_plan_chunks_rejects_a_zero_chunk() -> None:
    with pytest.raises(ValueError, match="chunk_frames must be positive"):
        plan_chunks(100, 0)


# ---- check_contiguous / scanned_prefix -------------------------------------------------------------------


def _states(*counts: int | None, chunk: int = 100) -> list[ChunkState]:
    """Chunks of `chunk` frames with the given frame counts (None: not encoded); the last is open-ended."""
    last = len(counts) - 1
    return [ChunkState(i, i * chunk, (i + 1) * chunk if i < last else None, count) for i, count in enumerate(counts)]


def test_a_short_chunk_followed_by_frames_is_refused() -> None:
    states = _states(100, 40, 100, 7)
    with pytest.raises(PermanentError) as error:
        check_contiguous(states)
    assert str(error.value) == (
        "The source's video ended at frame 140, yet chunk 2 (from frame 200) has 100 frames: "
        "its timestamps are inconsistent."
    )
    # The order the rows come in does not matter, and chunks not encoded yet are no excuse.
    with pytest.raises(PermanentError, match=re.escape("ended at frame 140, yet chunk 3 (from frame 300) has 7")):
        check_contiguous(list(reversed(_states(100, 40, None, 7))))
    # An empty chunk ends the video too.
    with pytest.raises(PermanentError, match=re.escape("ended at frame 100, yet chunk 2 (from frame 200) has 5")):
        check_contiguous(_states(100, 0, 5))


@pytest.mark.parametrize(
    "counts",
    [
        (100, 40, 0, 0),  # short, then empty: the source ended inside chunk 1
        (100, 100, 0),  # the estimate was one chunk too long
        (100, 40, None, 0),
        (100, 100, 100, 250),  # the open-ended last chunk may hold any number of frames
        (None, 100, 3),
        (100, 40),
        (1,),
    ],
)
def test_chunks_that_tile_the_video_pass(counts: tuple[int | None, ...]) -> None:
    check_contiguous(_states(*counts))


def test_scanned_prefix_stops_at_the_first_gap() -> None:
    states = _states(100, 100, None, 100, 7)
    assert [s.index for s in scanned_prefix(list(reversed(states)))] == [0, 1]
    assert scanned_prefix(_states(None, 100)) == []
    assert [s.index for s in scanned_prefix(_states(100, 40, 0))] == [0, 1, 2]
    assert [(s.short, s.planned) for s in _states(100, 40, 0)] == [(False, 100), (True, 100), (False, 0)]


# ---- release ---------------------------------------------------------------------------------------------


def _single_pass(cuts: list[DetectedCut], total: int, min_len: int) -> list[tuple[int, int]]:
    return segments_from_cuts([c.frame for c in merge_short_segments(cuts, total, min_len)], total)


def _scan(
    cuts: list[DetectedCut],
    lags: dict[int, int],
    total: int,
    *,
    min_len: int,
    settle: int,
    steps: list[int],
) -> tuple[list[tuple[int, int]], list[DetectedCut]]:
    """Release after each step of a growing scan; a cut is emitted `lags[cut]` frames after it is scanned.

    Returns all segments and end cuts released, checking each release as it goes."""
    released, scanned, step = 0, 0, 0
    segments: list[tuple[int, int]] = []
    ends: list[DetectedCut] = []
    while scanned < total:
        scanned = min(total, scanned + steps[step % len(steps)])
        step += 1
        finished = scanned == total
        emitted = [c for c in cuts if c.frame + lags[c.frame] <= scanned]
        result = release(
            emitted, scanned=scanned, finished=finished, released_frames=released, min_len=min_len, settle=settle
        )
        bounds = [released, *(end for _, end in result.segments)]
        assert [start for start, _ in result.segments] == bounds[:-1], "new segments start where the last ended"
        assert all(start < end <= scanned for start, end in result.segments)
        assert result.released_frames == bounds[-1]
        if finished:
            assert result.released_frames == total
        segments += result.segments
        ends += result.end_cuts
        released = result.released_frames
    return segments, ends


def _random_case(rng: random.Random) -> tuple[list[DetectedCut], int, int]:
    """Cuts at least `min_len` apart (and from frame 0), as every detector keeps them; often a short tail."""
    min_len = rng.choice([1, 2, 5, 15, 24, 30])
    frames: list[int] = []
    frame = 0
    while True:
        frame += min_len + rng.choice([0, 0, 1, rng.randint(0, 3 * min_len + 5)])
        if frame > 600 or rng.random() < 0.05:
            break
        frames.append(frame)
    if frames and min_len > 1 and rng.random() < 0.5:
        total = frames[-1] + rng.randint(1, min_len - 1)  # the last segment is short: a single pass merges it
    else:
        total = (frames[-1] if frames else 0) + rng.randint(1, 3 * min_len + 5)
    scores = [math.nan if rng.random() < 0.05 else rng.uniform(0.2, 60.0) for _ in frames]
    return [DetectedCut(f, s) for f, s in zip(frames, scores, strict=True)], total, min_len


def _same_score(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_progressive_releases_add_up_to_the_single_pass() -> None:
    rng = random.Random(20240611)
    merged = 0
    for case in range(600):
        cuts, total, min_len = _random_case(rng)
        settle = rng.choice([1, 3, min_len + 1])
        lags = {c.frame: rng.randint(1, settle) for c in cuts}
        # The single pass knows the cuts a replay of the whole video emits; later ones never appear.
        final = [c for c in cuts if c.frame + lags[c.frame] <= total]
        expected = _single_pass(final, total, min_len)
        merged += len(expected) < len(final) + 1
        steps = rng.choice([[1], [total], [rng.randint(1, 40)], [rng.randint(1, 9), rng.randint(20, 90)]])

        segments, ends = _scan(cuts, lags, total, min_len=min_len, settle=settle, steps=steps)

        assert segments == expected, f"case {case}: min_len={min_len} settle={settle} steps={steps}"
        kept = merge_short_segments(final, total, min_len)
        assert [c.frame for c in ends] == [c.frame for c in kept], f"case {case}"
        assert all(_same_score(a.score, b.score) for a, b in zip(ends, kept, strict=True)), f"case {case}"
    assert merged > 50, "the cases must include short last segments that the single pass merges"


def test_a_short_tail_is_merged_without_touching_released_clips() -> None:
    cuts = [DetectedCut(20, 9.0), DetectedCut(40, 8.0), DetectedCut(55, 30.0)]
    first = release(cuts[:2], scanned=50, finished=False, released_frames=0, min_len=10, settle=3)
    assert first.segments == [(0, 20), (20, 40)]
    assert first.end_cuts == cuts[:2] and first.released_frames == 40
    # 55 needs 10 more frames to be final; the video ends at 60, so the single pass merges [55, 60) away.
    assert release(cuts, scanned=60, finished=False, released_frames=40, min_len=10, settle=3).segments == []
    last = release(cuts, scanned=60, finished=True, released_frames=40, min_len=10, settle=3)
    assert last.segments == [(40, 60)] and last.end_cuts == [] and last.released_frames == 60
    assert first.segments + last.segments == _single_pass(cuts, 60, 10) == [(0, 20), (20, 40), (40, 60)]
    # Nothing is left to release once the whole video is.
    assert release(cuts, scanned=60, finished=True, released_frames=60, min_len=10, settle=3).segments == []


def test_a_segment_waits_for_the_longer_of_min_len_and_settle() -> None:
    cuts = [DetectedCut(30, 5.0)]
    for settle, scanned in ((3, 39), (3, 40), (16, 45), (16, 46)):
        result = release(cuts, scanned=scanned, finished=False, released_frames=0, min_len=10, settle=settle)
        final = scanned >= 30 + max(10, settle)
        assert result.segments == ([(0, 30)] if final else []), (settle, scanned)


def test_a_video_shorter_than_min_len_is_one_clip() -> None:
    result = release([], scanned=7, finished=True, released_frames=0, min_len=15, settle=3)
    assert result.segments == [(0, 7)] and result.end_cuts == [] and result.released_frames == 7
