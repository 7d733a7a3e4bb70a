"""A video's timeline as the review page shows it: every live clip and every cut. Pure.

It is immutable tuples on purpose: a page keeps one per tab and changes it on every action in the video,
and Reflex wraps lists and dicts held in a state in change-tracking proxies, which made walking a long
video's clips the web process's main cost with 20 reviewers. The browser draws it from one compact JSON
string (`encode`), so a change sends one string, not a list of hundreds of components' props.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from heaters.models.states import ClipState

TONES: dict[str, str] = {
    ClipState.PENDING_REVIEW: "pending",
    ClipState.REVIEW_APPROVED: "approved",
    ClipState.REVIEW_SKIPPED: "skipped",
    ClipState.REVIEW_ARCHIVED: "rejected",
}

ClipRow = tuple[int, int, int, str]  # id, start_frame, end_frame, state
CutRow = tuple[int, float | None, str]  # frame, score, source


class Timeline(NamedTuple):
    video_id: int = 0
    frame_count: int = 0
    clips: tuple[ClipRow, ...] = ()
    cuts: tuple[CutRow, ...] = ()

    @classmethod
    def from_rows(cls, data: Mapping[str, Any]) -> Timeline:
        """From `review.queue.timeline` (database rows)."""
        return cls(
            int(data["video_id"]),
            int(data["frame_count"]),
            _clips(data["clips"]),
            _cuts(data["cuts"]),
        )

    def apply(self, event: Mapping[str, Any]) -> Timeline:
        """A `clips.changed` event of this video: its rows replace theirs, archived and removed ones go,
        cuts come and go."""
        if event.get("video_id") != self.video_id:
            return self
        changed = _clips(c for c in event.get("clips", []) if c["state"] != ClipState.ARCHIVED)
        gone = {int(c["id"]) for c in event.get("clips", [])} | {int(i) for i in event.get("removed") or []}
        clips = tuple(sorted((*(c for c in self.clips if c[0] not in gone), *changed), key=lambda c: c[1]))
        dropped = {int(f) for f in event.get("cuts_removed") or []}
        cuts = tuple(sorted((*(c for c in self.cuts if c[0] not in dropped), *_cuts(event.get("cuts_added") or []))))
        return self._replace(clips=clips, cuts=cuts)

    def encode(self) -> str:
        """`{"n": frames, "c": [[id, start, end, tone], ...], "k": [[frame, score, reviewer], ...]}`.

        Every tab on a video holds an equal timeline after each event, so the string is made once per
        process and change, not once per tab (the cache is keyed by the value).
        """
        return _encode(self)

    def position(self, clip_id: int) -> tuple[int, int]:
        """Where a clip is in its video: (n, m) for "clip n of m"."""
        for index, clip in enumerate(self.clips, start=1):
            if clip[0] == clip_id:
                return index, len(self.clips)
        return 0, len(self.clips)


@lru_cache(maxsize=64)
def _encode(timeline: Timeline) -> str:
    if not timeline.frame_count:
        return ""
    return json.dumps(
        {
            "n": timeline.frame_count,
            "c": [[i, s, e, TONES.get(state, "done")] for i, s, e, state in timeline.clips],
            "k": [
                [f, round(score, 3) if score is not None else None, int(src == "reviewer")]
                for f, score, src in timeline.cuts
            ],
        },
        separators=(",", ":"),
    )


def _clips(rows: Iterable[Mapping[str, Any]]) -> tuple[ClipRow, ...]:
    return tuple((int(r["id"]), int(r["start_frame"]), int(r["end_frame"]), str(r["state"])) for r in rows)


def _cuts(rows: Iterable[Mapping[str, Any]]) -> tuple[CutRow, ...]:
    return tuple(
        (int(r["frame"]), float(r["score"]) if r.get("score") is not None else None, str(r.get("source") or ""))
        for r in rows
    )
