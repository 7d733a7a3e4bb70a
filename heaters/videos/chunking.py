"""A chunked proxy's plan and which clips its scan has made final: pure functions, no I/O.

The plan splits the proxy's frames (not seconds: frame n is at n/fps, so boundaries are exact) into
chunks of `chunk_frames`; the last one is open-ended, so an estimate of the length that is a little off
only makes the last chunk a little longer or shorter. A chunk that comes out shorter than planned means
the source ended there: every later chunk must then be empty, which `check_contiguous` enforces.

Release: a segment [a, b) between two emitted cuts is final once the scan has passed b by the minimum
scene length (and the detector's event buffer), because every detector keeps cuts at least that far
apart and emits them in frame order: no later cut can fall inside it, and the segment after b cannot turn
out short, which is the only case where the end-of-video merge (`merge_short_segments`) would remove b.
At the end of the video the rest is merged as a single pass merges it, without touching what was
released: a clip that is shown is final.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from heaters.clips.segments import merge_short_segments
from heaters.errors import PermanentError
from heaters.media.scenes import DetectedCut

Plan = list[tuple[int, int | None]]


def plan_chunks(expected_frames: int, chunk_frames: int) -> Plan:
    """[start, end) of each chunk; the last ends with the video (None)."""
    if chunk_frames < 1:
        raise ValueError("chunk_frames must be positive")
    count = max(1, math.ceil(max(1, expected_frames) / chunk_frames))
    return [(i * chunk_frames, (i + 1) * chunk_frames if i < count - 1 else None) for i in range(count)]


@dataclass(frozen=True)
class ChunkState:
    """What the scan needs of one chunk: its plan and, once encoded, its frame count."""

    index: int
    start_frame: int
    end_frame: int | None
    frame_count: int | None  # None: not encoded yet

    @property
    def encoded(self) -> bool:
        return self.frame_count is not None

    @property
    def short(self) -> bool:
        """Fewer frames than planned: the source ended inside this chunk."""
        return self.end_frame is not None and self.frame_count is not None and self.frame_count < self.planned

    @property
    def planned(self) -> int:
        return (self.end_frame - self.start_frame) if self.end_frame is not None else 0


def scanned_prefix(chunks: Sequence[ChunkState]) -> list[ChunkState]:
    """The encoded chunks from the first one on, up to the first gap: what the scan can replay."""
    prefix: list[ChunkState] = []
    for chunk in sorted(chunks, key=lambda c: c.index):
        if not chunk.encoded:
            break
        prefix.append(chunk)
    return prefix


def check_contiguous(chunks: Sequence[ChunkState]) -> None:
    """Encoded chunks must tile the video: after a short chunk (the source's end) only empty ones."""
    ended_at: int | None = None
    for chunk in sorted(chunks, key=lambda c: c.index):
        if not chunk.encoded:
            continue
        if ended_at is not None and chunk.frame_count:
            raise PermanentError(
                f"The source's video ended at frame {ended_at}, yet chunk {chunk.index} (from frame "
                f"{chunk.start_frame}) has {chunk.frame_count} frames: its timestamps are inconsistent."
            )
        if chunk.short or (chunk.frame_count == 0 and ended_at is None):
            ended_at = chunk.start_frame + (chunk.frame_count or 0)


@dataclass(frozen=True)
class Release:
    """New final segments [start, end) and the cuts that end them (the video's own end is no cut)."""

    segments: list[tuple[int, int]]
    end_cuts: list[DetectedCut]
    released_frames: int


def release(
    cuts: Sequence[DetectedCut],
    *,
    scanned: int,
    finished: bool,
    released_frames: int,
    min_len: int,
    settle: int,
) -> Release:
    """The segments that became final since `released_frames`, given the cuts emitted over [0, scanned).

    `finished`: `scanned` is the video's whole length, so the rest is released, merged as in one pass.
    """
    by_frame = {cut.frame: cut for cut in cuts}
    later = sorted(c for c in by_frame if c > released_frames)
    if finished:
        if scanned <= released_frames:
            return Release([], [], released_frames)
        tail = [DetectedCut(c - released_frames, by_frame[c].score) for c in later if c < scanned]
        kept = merge_short_segments(tail, scanned - released_frames, min_len)
        bounds = [released_frames, *(released_frames + c.frame for c in kept), scanned]
    else:
        margin = max(min_len, settle)
        bounds = [released_frames, *(c for c in later if c + margin <= scanned)]
    segments = list(pairwise(bounds))
    ends = [by_frame[end] for _, end in segments if end in by_frame and not (finished and end == scanned)]
    return Release(segments, ends, bounds[-1] if segments else released_frames)
