"""The playback cache's records (`temp_clips`): the only writer of their state.

One row per clip (a unique index), so however many tabs ask for a clip at once, one INSERT wins and one
message is sent: the clip is generated once. A row is `generating` (its worker holds a lease), `ready`
(the file is in the cache, and in S3 under `playback/` when playback is shared), or `failed` with its
error until someone presses Retry. Callers own the transaction; messages leave after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import text
from sqlmodel import Session

from heaters import events, jobs
from heaters.playback import names
from heaters.queues import Queue

ACTOR = "temp_clips.generate"
# A generation that was never picked up (a lost message) is sent again when the clip is asked for after this.
RESEND_AFTER_SECONDS = 20


@dataclass(frozen=True)
class TempClipStatus:
    clip_id: int
    state: str
    url: str = ""
    error: str = ""


@dataclass(frozen=True)
class GenerationJob:
    """What a worker needs to cut one temp clip."""

    temp_clip_id: int
    clip_id: int
    filename: str
    start_frame: int
    end_frame: int
    fps: Fraction | None  # None (and no proxy_key) only if the video lost its proxy: the job fails
    frame_count: int | None
    proxy_key: str | None
    worker_id: str
    # A video whose proxy is still being encoded in chunks: the chunk files holding the clip, as
    # (key, first frame) in order, and the original for the clip's audio.
    chunks: tuple[tuple[str, int], ...] = ()
    original_key: str | None = None


def _millis() -> int:
    return time.time_ns() // 1_000_000


def _send(temp_clip_ids: Sequence[int]) -> None:
    for temp_clip_id in temp_clip_ids:
        jobs.enqueue(ACTOR, Queue.TEMP_CLIPS.value, int(temp_clip_id))


def request(
    session: Session, clip_ids: Sequence[int], *, file_exists: Callable[[str], bool] | None = None
) -> dict[int, TempClipStatus]:
    """Make sure each clip has a temp clip, ready or on its way; return where each one stands.

    `file_exists` (single host: the web process and the workers share the cache directory) lets a ready
    entry whose file has gone be made again instead of answering 404 later.
    """
    ids = list(dict.fromkeys(int(i) for i in clip_ids))  # in the caller's order: the current clip first
    if not ids:
        return {}
    millis = _millis()
    # Rows go in sorted (so two requests for the same clips never deadlock); messages leave in the
    # caller's order. A plain ON CONFLICT also covers two requests naming a file in the same millisecond.
    order = sorted(ids)
    created = {
        int(clip): int(row)
        for row, clip in session.execute(
            text(
                """
                INSERT INTO temp_clips (clip_id, filename, state)
                SELECT c.id, wanted.name, 'generating'
                  FROM unnest(CAST(:ids AS integer[]), CAST(:names AS text[])) AS wanted(id, name)
                  JOIN clips c ON c.id = wanted.id
                 ORDER BY c.id
                ON CONFLICT DO NOTHING
                RETURNING id, clip_id
                """
            ),
            {"ids": order, "names": [names.temp_filename(i, millis) for i in order]},
        ).all()
    }
    stalled = _reclaim_stalled(session, ids)
    due = {**created, **stalled}
    _send([due[clip] for clip in ids if clip in due])
    rows = session.execute(
        text("SELECT id, clip_id, state, filename, error FROM temp_clips WHERE clip_id = ANY(:ids) ORDER BY clip_id"),
        {"ids": ids},
    ).mappings()
    statuses: dict[int, TempClipStatus] = {}
    for row in rows:
        if row["state"] == "ready" and file_exists is not None and not file_exists(row["filename"]):
            _regenerate(session, int(row["id"]), int(row["clip_id"]))
            statuses[row["clip_id"]] = TempClipStatus(row["clip_id"], "generating")
            continue
        url = names.media_url(row["filename"]) if row["state"] == "ready" else ""
        statuses[row["clip_id"]] = TempClipStatus(row["clip_id"], row["state"], url, row["error"] or "")
    return statuses


def _regenerate(session: Session, temp_clip_id: int, clip_id: int) -> None:
    session.execute(
        text(
            "UPDATE temp_clips SET state = 'generating', filename = :name, error = NULL, worker_id = NULL, "
            "lease_until = NULL, s3_key = NULL, size_bytes = NULL, ready_at = NULL, requested_at = now() "
            "WHERE id = :id"
        ),
        {"id": temp_clip_id, "name": names.temp_filename(clip_id, _millis())},
    )
    _send([temp_clip_id])


def retry(session: Session, clip_id: int) -> None:
    """The Retry button: a failed temp clip is made again, under a new name."""
    row = session.execute(
        text("SELECT id FROM temp_clips WHERE clip_id = :clip AND state = 'failed' FOR UPDATE"), {"clip": clip_id}
    ).first()
    if row is None:
        request(session, [clip_id])
        return
    _regenerate(session, int(row[0]), clip_id)


def take(session: Session, temp_clip_id: int, worker_id: str, *, lease_seconds: int) -> GenerationJob | None:
    """Claim a generation for this worker; None when another worker has it, it is done, or it is gone."""
    row = (
        session.execute(
            text(
                """
                UPDATE temp_clips t SET worker_id = :worker, lease_until = now() + make_interval(secs => :lease)
                  FROM clips c JOIN source_videos v ON v.id = c.source_video_id
                 WHERE t.id = :id AND c.id = t.clip_id AND t.state = 'generating'
                   AND (t.worker_id IS NULL OR t.lease_until < now())
                RETURNING t.id, t.clip_id, t.filename, c.start_frame, c.end_frame, v.fps_num, v.fps_den,
                          v.frame_count, v.proxy_filepath, v.id AS video_id, v.filepath AS original_key
                """
            ),
            {"id": temp_clip_id, "worker": worker_id, "lease": lease_seconds},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    chunks: tuple[tuple[str, int], ...] = ()
    if row["proxy_filepath"] is None:
        chunks = chunks_holding(session, int(row["video_id"]), row["start_frame"], row["end_frame"])
    return GenerationJob(
        chunks=chunks,
        original_key=row["original_key"],
        temp_clip_id=row["id"],
        clip_id=row["clip_id"],
        filename=row["filename"],
        start_frame=row["start_frame"],
        end_frame=row["end_frame"],
        fps=Fraction(row["fps_num"], row["fps_den"]) if row["fps_num"] else None,
        frame_count=row["frame_count"],
        proxy_key=row["proxy_filepath"],
        worker_id=worker_id,
    )


def proxy_of_clip(session: Session, clip_id: int) -> str | None:
    row = session.execute(
        text("SELECT v.proxy_filepath FROM clips c JOIN source_videos v ON v.id = c.source_video_id WHERE c.id = :id"),
        {"id": clip_id},
    ).first()
    return str(row[0]) if row and row[0] else None


def chunks_holding(session: Session, video_id: int, start_frame: int, end_frame: int) -> tuple[tuple[str, int], ...]:
    """The encoded chunk files that together hold frames [start_frame, end_frame), or () if any is missing."""
    rows = session.execute(
        text(
            "SELECT filepath, start_frame, frame_count FROM proxy_chunks WHERE source_video_id = :video "
            "AND start_frame < :end AND start_frame + coalesce(frame_count, 0) > :start ORDER BY start_frame"
        ),
        {"video": video_id, "start": start_frame, "end": end_frame},
    ).all()
    covered = start_frame
    for key, first, count in rows:
        if key is None or first > covered:
            return ()
        covered = first + count
    if covered < end_frame:
        return ()
    return tuple((str(key), int(first)) for key, first, _ in rows)


def mark_ready(session: Session, job: GenerationJob, *, size_bytes: int, generate_ms: int, s3_key: str | None) -> bool:
    """Record the finished file and tell the pages showing this clip; False if the claim was lost."""
    result = session.execute(
        text(
            "UPDATE temp_clips SET state = 'ready', size_bytes = :size, generate_ms = :ms, s3_key = :key, "
            "ready_at = now(), lease_until = NULL, error = NULL "
            "WHERE id = :id AND worker_id = :worker AND state = 'generating' AND filename = :name"
        ),
        {
            "id": job.temp_clip_id,
            "worker": job.worker_id,
            "name": job.filename,
            "size": size_bytes,
            "ms": generate_ms,
            "key": s3_key,
        },
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    events.publish(
        "temp_clip.ready",
        topics=[events.clip_topic(job.clip_id)],
        clip_id=job.clip_id,
        url=names.media_url(job.filename),
    )
    return True


def mark_failed(session: Session, job: GenerationJob, error: str) -> bool:
    result = session.execute(
        text(
            "UPDATE temp_clips SET state = 'failed', error = :error, lease_until = NULL "
            "WHERE id = :id AND worker_id = :worker AND state = 'generating'"
        ),
        {"id": job.temp_clip_id, "worker": job.worker_id, "error": error[:2000]},
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    events.publish("temp_clip.failed", topics=[events.clip_topic(job.clip_id)], clip_id=job.clip_id, error=error)
    return True


@dataclass(frozen=True)
class ServedFile:
    filename: str
    s3_key: str | None


def find_ready(session: Session, filename: str) -> ServedFile | None:
    row = session.execute(
        text("SELECT filename, s3_key FROM temp_clips WHERE filename = :name AND state = 'ready'"), {"name": filename}
    ).first()
    return ServedFile(str(row[0]), row[1]) if row else None


def mark_served(session: Session, filename: str, *, min_interval_seconds: int = 5) -> None:
    """When the cache last served this file: the cleanup evicts the least recently served first."""
    session.execute(
        text(
            "UPDATE temp_clips SET last_served_at = now() WHERE filename = :name "
            "AND (last_served_at IS NULL OR last_served_at < now() - make_interval(secs => :gap))"
        ),
        {"name": filename, "gap": min_interval_seconds},
    )


def _reclaim_stalled(session: Session, clip_ids: Sequence[int] | None) -> dict[int, int]:
    """Generations whose worker died or whose message was lost (of these clips, or all): clip -> row id,
    ready to be sent again. Rows are locked in clip order, so concurrent callers never deadlock."""
    return {
        int(clip): int(row)
        for row, clip in session.execute(
            text(
                """
                WITH due AS (
                    SELECT id FROM temp_clips
                     WHERE (CAST(:ids AS integer[]) IS NULL OR clip_id = ANY(CAST(:ids AS integer[])))
                       AND state = 'generating'
                       AND ((worker_id IS NOT NULL AND lease_until < now())
                            OR (worker_id IS NULL AND requested_at < now() - make_interval(secs => :resend)))
                     ORDER BY clip_id
                       FOR UPDATE
                )
                UPDATE temp_clips t SET requested_at = now(), worker_id = NULL, lease_until = NULL
                  FROM due WHERE t.id = due.id
                RETURNING t.id, t.clip_id
                """
            ),
            {"ids": list(clip_ids) if clip_ids is not None else None, "resend": RESEND_AFTER_SECONDS},
        ).all()
    }


def resend_stalled(session: Session) -> int:
    """The Dispatcher's part: every stalled generation goes out again."""
    due = _reclaim_stalled(session, None)
    _send([due[clip] for clip in sorted(due)])
    return len(due)
