"""Segments from cuts: pure functions, no I/O.

A video of `frame_count` frames with cut frames c1 < c2 < ... has the half-open segments
[0, c1), [c1, c2), ..., [cn, frame_count): the implicit boundaries 0 and frame_count are never stored as
cuts. Segments always cover [0, frame_count) exactly, with no gap and no overlap.

Short segments are merged into a neighbour, never dropped (the original dropped them, and with a short
last segment lost the last real cut, reference §3.7). Which neighbour: the boundary with the lower
detector score goes (a weak boundary is the likelier false cut, e.g. a flash or fast pan); on equal scores,
the one whose removal makes the shorter merged segment; then the earlier one. The first and last segments
can only merge inward. The shortest segment is handled first, and merging repeats until every segment
reaches `min_len` or only one segment is left.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import TypeVar

Cut = TypeVar("Cut", bound=tuple[int, float])  # (frame, score); heaters.media.scenes.DetectedCut fits


def normalise_cuts(cut_frames: Iterable[int], frame_count: int) -> list[int]:
    """Sorted, unique cut frames; a cut at 0 or at/after the end is a caller bug and raises."""
    if frame_count < 1:
        raise ValueError(f"frame_count must be positive, got {frame_count}")
    cuts = sorted(set(cut_frames))
    bad = [c for c in cuts if not 0 < c < frame_count]
    if bad:
        raise ValueError(f"cuts must lie strictly inside (0, {frame_count}); got {bad}")
    return cuts


def segments_from_cuts(cut_frames: Iterable[int], frame_count: int) -> list[tuple[int, int]]:
    """Half-open [start, end) segments covering [0, frame_count), split at each cut frame."""
    bounds = [0, *normalise_cuts(cut_frames, frame_count), frame_count]
    return list(pairwise(bounds))


def merge_short_segments(cuts_with_scores: Sequence[Cut], frame_count: int, min_len: int) -> list[Cut]:
    """The cuts to keep so that no segment is shorter than `min_len` frames (see the module docstring).

    Returns a subset of the input items, sorted by frame; the segments they make still cover the video.
    """
    by_frame: dict[int, Cut] = {}
    for item in cuts_with_scores:
        by_frame[int(item[0])] = item
    frames = normalise_cuts(by_frame, frame_count)
    if min_len <= 1 or not frames:
        return [by_frame[f] for f in frames]

    bounds = [0, *frames, frame_count]
    last = len(bounds) - 1
    prev = list(range(-1, last))  # prev[i] / nxt[i]: neighbouring live boundary indices
    nxt = list(range(1, last + 2))
    alive = [True] * len(bounds)
    segments = last

    def strength(i: int) -> float:
        score = float(by_frame[bounds[i]][1])
        return -math.inf if math.isnan(score) else score

    heap = [(bounds[i + 1] - bounds[i], bounds[i], i) for i in range(last)]
    heapq.heapify(heap)
    while heap and segments > 1:
        length, _, left = heapq.heappop(heap)
        if not alive[left] or bounds[nxt[left]] - bounds[left] != length:
            continue  # stale entry: this segment was already merged
        if length >= min_len:
            break
        right = nxt[left]
        candidates = [i for i in (left, right) if 0 < i < last]
        if len(candidates) == 2:
            merged_if_left = bounds[right] - bounds[prev[left]]
            merged_if_right = bounds[nxt[right]] - bounds[left]
            candidates.sort(key=lambda i: (strength(i), merged_if_left if i == left else merged_if_right, i))
        drop = candidates[0]
        alive[drop] = False
        before, after = prev[drop], nxt[drop]
        nxt[before], prev[after] = after, before
        segments -= 1
        heapq.heappush(heap, (bounds[after] - bounds[before], bounds[before], before))
    return [by_frame[bounds[i]] for i in range(1, last) if alive[i]]


def segment_identifier(video_id: int | str, index: int) -> str:
    """Clip identifier for the `index`-th segment of a video, counted from 1: "42_segment_001"."""
    if index < 1:
        raise ValueError("segment index counts from 1")
    return f"{video_id}_segment_{index:03d}"
