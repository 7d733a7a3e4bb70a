"""What the review page shows about its clips, read in one query per screenful: plain dicts for the state.

A card carries everything the page needs to show a queued clip the moment it becomes current (frames,
fps, its place in the video, the cut scores at both ends, its neighbours, and whether merge and group
are possible), so advancing needs no query.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from heaters.models.states import ClipState
from heaters.review import rules

_ARCHIVED = ClipState.ARCHIVED.value  # replaced by a split or merge: history, not part of the video

_CARDS = text(
    f"""
    SELECT c.id, c.source_video_id AS video_id, c.start_frame, c.end_frame, c.ingest_state AS state,
           c.clip_identifier AS identifier, v.title, v.fps_num, v.fps_den,
           coalesce(v.frame_count, v.scanned_frames) AS frame_count,
           p.id AS prev_id, p.ingest_state AS prev_state, p.grouped_with_clip_id AS prev_grouped,
           (pl.holder IS NOT NULL AND pl.holder <> :holder) AS prev_held_by_other,
           p.start_frame AS prev_start, p.end_frame AS prev_end,
           n.id AS next_id, n.ingest_state AS next_state, n.start_frame AS next_start, n.end_frame AS next_end,
           cs.id IS NOT NULL AS start_cut, cs.score AS start_score, ce.score AS end_score,
           (SELECT count(*) FROM clips x WHERE x.source_video_id = c.source_video_id
               AND x.ingest_state <> '{_ARCHIVED}' AND x.start_frame < c.start_frame) + 1 AS position,
           (SELECT count(*) FROM clips x WHERE x.source_video_id = c.source_video_id
               AND x.ingest_state <> '{_ARCHIVED}') AS clip_total
      FROM clips c
      JOIN source_videos v ON v.id = c.source_video_id
      LEFT JOIN clips p ON p.source_video_id = c.source_video_id AND p.end_frame = c.start_frame
                       AND p.ingest_state <> '{_ARCHIVED}' AND c.start_frame > 0
      LEFT JOIN review_leases pl ON pl.clip_id = p.id AND pl.lease_until > now()
      LEFT JOIN clips n ON n.source_video_id = c.source_video_id AND n.start_frame = c.end_frame
                       AND n.ingest_state <> '{_ARCHIVED}'
      LEFT JOIN cuts cs ON cs.source_video_id = c.source_video_id AND cs.frame_number = c.start_frame
      LEFT JOIN cuts ce ON ce.source_video_id = c.source_video_id AND ce.frame_number = c.end_frame
     WHERE c.id = ANY(:ids)
    """
)


def _score(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else ""


def card(row: dict[str, Any]) -> dict[str, Any]:
    """One clip as the page shows it (pure: a row of the query above in, a dict of plain values out)."""
    fps = Fraction(row["fps_num"], row["fps_den"]) if row["fps_num"] else None
    frames = row["end_frame"] - row["start_frame"]
    return _availability(
        {
            "id": row["id"],
            "video_id": row["video_id"],
            "title": row["title"],
            "identifier": row["identifier"],
            "start_frame": row["start_frame"],
            "end_frame": row["end_frame"],
            "frames": frames,
            "fps_num": fps.numerator if fps else 0,
            "fps_den": fps.denominator if fps else 1,
            "duration": f"{float(frames / fps):.2f} s" if fps else "",
            "position": int(row["position"]),
            "clip_total": int(row["clip_total"]),
            "prev_id": row["prev_id"] or 0,
            "prev_state": row["prev_state"] or "",
            "prev_grouped": row["prev_grouped"],
            "prev_held_by_other": bool(row["prev_held_by_other"]),
            "start_cut": bool(row["start_cut"]),
            "prev_frames": (row["prev_end"] - row["prev_start"]) if row["prev_id"] else 0,
            "next_id": row["next_id"] or 0,
            "next_state": row["next_state"] or "",
            "start_score": _score(row["start_score"]) if row["start_frame"] > 0 else "",
            "end_score": _score(row["end_score"])
            if row["frame_count"] and row["end_frame"] < row["frame_count"]
            else "",
        }
    )


def _availability(item: dict[str, Any]) -> dict[str, Any]:
    """Whether merge and group are possible, from what the card says of the clip before it."""
    prev = (
        rules.Neighbour(
            id=item["prev_id"],
            state=item["prev_state"],
            held_by_other=item["prev_held_by_other"],
            grouped_with=item["prev_grouped"],
        )
        if item["prev_id"]
        else None
    )
    item["merge_problem"] = rules.merge_problem(item["start_frame"], prev, cut_exists=item["start_cut"]) or ""
    item["group_problem"] = rules.group_problem(item["start_frame"], prev) or ""
    return item


def cards(session: Session, clip_ids: Sequence[int], holder: str) -> dict[int, dict[str, Any]]:
    if not clip_ids:
        return {}
    rows = session.execute(_CARDS, {"ids": list(clip_ids), "holder": holder}).mappings()
    return {int(r["id"]): card(dict(r)) for r in rows}


def timeline(session: Session, video_id: int) -> dict[str, Any]:
    """The whole video: every live clip as a segment, every cut with its score."""
    # While a chunked proxy is still being scanned, the timeline reaches as far as the scan.
    video = session.execute(
        text("SELECT coalesce(frame_count, scanned_frames) FROM source_videos WHERE id = :id"), {"id": video_id}
    ).first()
    total = int(video[0]) if video and video[0] else 0
    clips = session.execute(
        text(
            "SELECT id, start_frame, end_frame, ingest_state AS state FROM clips "
            f"WHERE source_video_id = :video AND ingest_state <> '{_ARCHIVED}' ORDER BY start_frame"
        ),
        {"video": video_id},
    ).mappings()
    cut_rows = session.execute(
        text("SELECT frame_number, score, source FROM cuts WHERE source_video_id = :video ORDER BY frame_number"),
        {"video": video_id},
    ).mappings()
    return {
        "video_id": video_id,
        "frame_count": total,
        "clips": [dict(r) for r in clips],
        "cuts": [{"frame": r["frame_number"], "score": r["score"], "source": r["source"]} for r in cut_rows],
    }


def reaction(
    cards: dict[int, dict[str, Any]], queue: list[int], event: dict[str, Any], me: str
) -> tuple[dict[int, dict[str, Any]], bool]:
    """What another tab's `clips.changed` means for this tab's cards (pure).

    Returns the cards with their neighbours' states, groups and leases updated from the event, and
    whether the queue must be settled again: a queued clip changed under us, or a neighbour was replaced
    (a split or merge next to one of our clips), which only the database can resolve.
    """
    rows = {int(r["id"]): r for r in event.get("clips", [])}
    replaced = {int(i) for i in event.get("removed") or []} | {
        i for i, r in rows.items() if r["state"] == ClipState.ARCHIVED
    }
    for clip_id in queue:
        row = rows.get(clip_id)
        if clip_id in replaced or (row is not None and row["state"] != ClipState.PENDING_REVIEW):
            return cards, True
    updated: dict[int, dict[str, Any]] = {}
    for clip_id, item in cards.items():
        if item["prev_id"] in replaced or item["next_id"] in replaced:
            return cards, True
        for row in rows.values():
            if row["state"] == ClipState.ARCHIVED:
                continue
            if row["end_frame"] == item["start_frame"] and row["id"] != item["prev_id"]:
                return cards, True  # a new clip before this one
            if row["start_frame"] == item["end_frame"] and row["id"] != item["next_id"]:
                return cards, True  # a new clip after this one
        prev, nxt = rows.get(item["prev_id"]), rows.get(item["next_id"])
        if prev is None and nxt is None:
            updated[clip_id] = item
            continue
        item = dict(item)
        if nxt is not None:
            item["next_state"] = nxt["state"]
        if prev is not None:
            item["prev_state"] = prev["state"]
            item["prev_grouped"] = prev.get("grouped_with")
            item["prev_held_by_other"] = prev.get("held_by") not in (None, me)
            _availability(item)
        updated[clip_id] = item
    return updated, False
