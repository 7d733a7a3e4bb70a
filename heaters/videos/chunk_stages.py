"""A chunked proxy's stages: plan the chunks, encode and scan each one (any worker), join them.

The plan is the encode stage's work when `PROXY_CHUNK_SECONDS` > 0. Every chunk is a job of its own on
`media_processing` with its own claim, so the Dispatcher, leases and retries cover each one and a killed
worker's chunk is redone, no other. A chunk's results (its file, frame count and scene scores) are written
in one transaction with the clips they make final, under a lock on the video row, so two chunks finishing
at once never release a clip twice. When the last chunk is in, the video's clips are complete and the join
(video.join_proxy) makes the one proxy file the rest of the product uses; clips are reviewed meanwhile from
the chunk files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from sqlalchemy import select, text, update
from sqlalchemy.orm import defer
from sqlmodel import Session, col

from heaters import events
from heaters.adapters import get_storage
from heaters.clips.repository import pending_counts
from heaters.clips.segments import segment_identifier
from heaters.db import unit_of_work
from heaters.errors import InvalidTransition, NotFound, PermanentError, TransientError
from heaters.media.ffmpeg import proxy_fps
from heaters.media.probe import UnsupportedMedia, probe
from heaters.media.scene_scores import Replay, analysis_size, pack_scores, settle_frames, unpack_scores
from heaters.media.scenes import DetectedCut
from heaters.models import Clip, ClipState, Cut, ProxyChunk, SourceVideo, VideoState
from heaters.pipeline import claims
from heaters.pipeline.dispatch import schedule
from heaters.pipeline.runner import StageContext
from heaters.pipeline.stages import Stage
from heaters.settings import Settings
from heaters.storage import keys
from heaters.videos import service
from heaters.videos.chunk_encode import check_tail, encode_chunk, join_chunks
from heaters.videos.chunking import ChunkState, check_contiguous, plan_chunks, release, scanned_prefix

log = logging.getLogger(__name__)
SOURCE_URL_TTL_SECONDS = 6 * 3600  # a worker's ffmpeg reads through it; it never reaches a browser


def _video(session: Session, video_id: int, *, lock: bool = False) -> SourceVideo:
    query = select(SourceVideo).where(col(SourceVideo.id) == video_id).execution_options(populate_existing=True)
    video = session.execute(query.with_for_update() if lock else query).scalars().first()
    if video is None:
        raise NotFound(f"video {video_id} no longer exists")
    return video


def _chunks(session: Session, video_id: int) -> list[ProxyChunk]:
    """A video's chunks without their scores: the scan reads only the scores it has not fed yet (`_scores`)."""
    query = (
        select(ProxyChunk)
        .where(col(ProxyChunk.source_video_id) == video_id)
        .order_by(col(ProxyChunk.chunk_index))
        .options(defer(ProxyChunk.scores))  # type: ignore[arg-type]
        .execution_options(populate_existing=True)
    )
    return list(session.execute(query).scalars().all())


def _scores(session: Session, video_id: int, indexes: list[int]) -> dict[int, bytes]:
    rows = session.execute(
        select(col(ProxyChunk.chunk_index), col(ProxyChunk.scores))
        .where(col(ProxyChunk.source_video_id) == video_id)
        .where(col(ProxyChunk.chunk_index).in_(indexes))
    ).all()
    return {int(index): data or b"" for index, data in rows}


def _publish_state(video_id: int, state: VideoState) -> None:
    events.publish("video.state", topics=events.video_topics(video_id), video_id=video_id, state=state.value)


def plan(ctx: StageContext) -> None:
    """The encode stage with chunking on: split the video into chunks and queue one job per chunk.

    Run again (a retry after a failed chunk), it keeps the chunks already encoded and sends the others.
    """
    with unit_of_work() as session:
        video = _video(session, ctx.entity_id)
        if video.proxy_filepath:  # joined already: only the hand-off was missing
            ctx.complete(session)
            return
        if not video.filepath:
            raise PermanentError("The original file is missing; ingest the video again.")
        original_key = video.filepath
        existing = _chunks(session, ctx.entity_id)
        if existing:
            service.transition(session, ctx.entity_id, VideoState.ENCODING, last_error=None)
            _resume(session, existing)
            ctx.complete(session)
            _publish_state(ctx.entity_id, VideoState.ENCODING)
            return

    storage = get_storage()
    stored = storage.head(original_key)
    if stored is None:
        raise PermanentError("The original file is missing from storage; ingest the video again.")
    if stored.size == 0:
        raise UnsupportedMedia("The file is empty (0 bytes).", reason="empty")
    url = storage.presigned_get(original_key, expires_in=SOURCE_URL_TTL_SECONDS)
    info = probe(url, timeout=min(120.0, ctx.settings.ffmpeg_timeout_seconds))
    check_tail(url, info, timeout=min(300.0, ctx.settings.ffmpeg_timeout_seconds))
    fps = proxy_fps(info.fps)
    expected = max(1, round(Fraction(info.duration_seconds) * fps))
    chunk_frames = max(1, round(Fraction(ctx.settings.proxy_chunk_seconds) * fps))
    width, height = analysis_size(info.width, info.height)
    ctx.check()
    with unit_of_work() as session:
        service.transition(
            session,
            ctx.entity_id,
            VideoState.ENCODING,
            progress=0.0,
            last_error=None,
            fps_num=fps.numerator,
            fps_den=fps.denominator,
            duration_seconds=info.duration_seconds,  # the source's until the joined proxy is measured
            scanned_frames=0,
            released_frames=0,
            released_clips=0,
        )
        rows = [
            ProxyChunk(
                source_video_id=ctx.entity_id,
                chunk_index=index,
                start_frame=start,
                end_frame=end,
                analysis_width=width,
                analysis_height=height,
            )
            for index, (start, end) in enumerate(plan_chunks(expected, chunk_frames))
        ]
        session.add_all(rows)
        session.flush()
        ctx.complete(session)
        for row in rows:
            assert row.id is not None
            schedule(session, Stage.ENCODE_CHUNK, row.id)
    log.info("video.encode %s: %s chunks of %s frames at %s fps", ctx.entity_id, len(rows), chunk_frames, fps)
    _publish_state(ctx.entity_id, VideoState.ENCODING)
    events.publish(
        "video.chunks", topics=events.video_topics(ctx.entity_id), video_id=ctx.entity_id, encoded=0, total=len(rows)
    )


def _resume(session: Session, chunks: list[ProxyChunk]) -> None:
    """A retried video: failed chunk jobs (and a failed join) start again with a fresh count."""
    video_id = chunks[0].source_video_id
    for chunk in chunks:
        assert chunk.id is not None
        if chunk.encoded_at is None:
            claims.reset(session, Stage.ENCODE_CHUNK, chunk.id)
            schedule(session, Stage.ENCODE_CHUNK, chunk.id)
    if all(chunk.encoded_at is not None for chunk in chunks):
        claims.reset(session, Stage.JOIN_PROXY, video_id)
        schedule(session, Stage.JOIN_PROXY, video_id)


def run_encode_chunk(ctx: StageContext) -> None:
    with unit_of_work() as session:
        chunk = session.get(ProxyChunk, ctx.entity_id, populate_existing=True)
        if chunk is None:
            raise NotFound(f"proxy chunk {ctx.entity_id} no longer exists")
        video = _video(session, chunk.source_video_id)
        if chunk.encoded_at is not None:
            ctx.complete(session)
            return
        if video.ingest_state != VideoState.ENCODING.value:
            raise InvalidTransition("video", video.id or 0, "encode a chunk of", video.ingest_state)
        if not video.filepath or video.fps is None:
            raise PermanentError("The original file or the proxy's frame rate is missing; retry the encode.")
        video_id, index = chunk.source_video_id, chunk.chunk_index
        start, end = chunk.start_frame, chunk.end_frame
        size = (chunk.analysis_width, chunk.analysis_height)
        original_key, fps = video.filepath, video.fps
        expected_total = round(Fraction(video.duration_seconds or 0.0) * fps)

    url = get_storage().presigned_get(original_key, expires_in=SOURCE_URL_TTL_SECONDS)
    encoded = encode_chunk(
        url,
        ctx.work_dir,
        fps=fps,
        start_frame=start,
        end_frame=end,
        analysis_size=size,
        detector=ctx.settings.scene_detector,
        crf=ctx.settings.proxy_crf,
        timeout=ctx.settings.ffmpeg_timeout_seconds,
        on_progress=ctx.progress,
    )
    ctx.check()
    _check_reached(start, end, encoded.frames, expected_total, fps)
    key = None
    if encoded.path is not None:
        key = keys.chunk_key(video_id, index)
        get_storage().upload_file(encoded.path, key)

    with unit_of_work() as session:
        video = _video(session, video_id, lock=True)  # one release at a time per video
        if video.ingest_state != VideoState.ENCODING.value:
            raise InvalidTransition("video", video_id, "finish a chunk of", video.ingest_state)
        session.execute(
            update(ProxyChunk)
            .where(col(ProxyChunk.id) == ctx.entity_id)
            .values(
                frame_count=encoded.frames,
                filepath=key,
                scores=pack_scores(encoded.scores),
                encoded_at=datetime.now(UTC),
                last_error=None,
            )
        )
        if encoded.info is not None and video.width is None:
            video.width, video.height = encoded.info.width, encoded.info.height
        outcome = release_scanned(session, video, ctx.settings)
        ctx.complete(session)
        if outcome.all_encoded:
            schedule(session, Stage.JOIN_PROXY, video_id)
        events.publish(
            "video.chunks",
            topics=events.video_topics(video_id),
            video_id=video_id,
            encoded=outcome.encoded,
            total=outcome.total,
            scanned_frames=outcome.scanned_frames,
        )
        events.publish(  # the encode's progress, as a single pass reports it
            "video.progress",
            topics=events.video_topics(video_id),
            video_id=video_id,
            stage=Stage.ENCODE.key,
            progress=video.progress,
        )
        if outcome.new_clips:
            counts = pending_counts(session, video_id)
            events.publish(
                "video.clips_ready",
                topics=[events.COUNTS, *events.video_topics(video_id)],
                video_id=video_id,
                clips=outcome.new_clips,
                pending_total=counts.total,
                video_pending=counts.video,
            )
    log.info(
        "video.encode_chunk %s: video %s chunk %s, %s frames, %s new clips",
        ctx.entity_id,
        video_id,
        index,
        encoded.frames,
        outcome.new_clips,
    )


def _check_reached(start: int, end: int | None, frames: int, expected_total: int, fps: Fraction) -> None:
    """A chunk may come out short only at the source's end. FFmpeg stops quietly (exit 0) when its input
    fails mid-read (an HTTP error, the object gone), and that must never pass for "the video ended here":
    it would cut the video short. The tolerance is the proxy check's, max(0.5 s, 2 %)."""
    if end is not None and frames == end - start:
        return
    reached = start + frames
    slack = max(round(fps / 2), round(expected_total * 0.02))
    if reached < expected_total - slack:
        raise TransientError(
            f"The original could be read only to frame {reached} of about {expected_total} for the chunk "
            f"from frame {start}; it may be unavailable right now."
        )


@dataclass(frozen=True)
class ReleaseOutcome:
    encoded: int
    total: int
    scanned_frames: int
    new_clips: int
    all_encoded: bool


def release_scanned(session: Session, video: SourceVideo, settings: Settings) -> ReleaseOutcome:
    """Replay the scores of the chunks scanned so far and write the clips that became final.

    The caller holds the video row's lock and owns the transaction.
    """
    assert video.id is not None and video.fps is not None
    rows = _chunks(session, video.id)
    states = [ChunkState(r.chunk_index, r.start_frame, r.end_frame, r.frame_count) for r in rows]
    check_contiguous(states)
    prefix = scanned_prefix(states)
    finished = len(prefix) == len(rows)
    encoded = sum(1 for s in states if s.encoded)
    min_len = max(1, round(settings.min_scene_seconds * video.fps))
    already = video.released_frames or 0
    options = {"threshold": settings.scene_threshold, "min_scene_len_frames": min_len, "fps": video.fps}
    replay = Replay.loads(video.scan_state, settings.scene_detector, **options)  # type: ignore[arg-type]
    starts = {sum(c.frame_count or 0 for c in prefix[:i]): i for i in range(len(prefix) + 1)}
    if replay is None or replay.frames not in starts:  # no usable state: replay from frame 0
        replay = Replay(settings.scene_detector, **options)  # type: ignore[arg-type]
    unfed = [chunk.index for chunk in prefix[starts[replay.frames] :]]
    scores = _scores(session, video.id, unfed) if unfed else {}
    for index in unfed:
        replay.feed(unpack_scores(scores[index]))
    scanned = replay.frames
    new_clips = 0
    if finished and scanned < 2:
        raise PermanentError(f"The video has {scanned} frame(s); a proxy needs at least 2.")
    if scanned and (finished or scanned > already):
        if finished:
            replay.finish()
        result = release(
            replay.cuts,
            scanned=scanned,
            finished=finished,
            released_frames=already,
            min_len=min_len,
            settle=settle_frames(settings.scene_detector, min_scene_len_frames=min_len),
        )
        new_clips = _write_release(session, video, result.segments, result.end_cuts)
        video.released_frames = result.released_frames
        video.released_clips = (video.released_clips or 0) + new_clips
    video.scanned_frames = scanned
    video.scan_state = None if finished else replay.dumps()
    video.progress = round(100.0 * encoded / max(1, len(rows)), 1)
    if finished:
        video.frame_count = scanned
        video.needs_splicing = False
        video.spliced_at = datetime.now(UTC)
    session.add(video)
    session.flush()
    return ReleaseOutcome(encoded, len(rows), scanned, new_clips, finished)


def _write_release(
    session: Session, video: SourceVideo, segments: list[tuple[int, int]], end_cuts: list[DetectedCut]
) -> int:
    assert video.id is not None
    first = (video.released_clips or 0) + 1
    for number, cut in enumerate(end_cuts, start=(video.released_clips or 0) + 1):
        score = float(cut.score) if cut.score == cut.score else None  # NaN: the detector gave no score
        session.add(
            Cut(
                source_video_id=video.id,
                frame_number=int(cut.frame),
                source="scene_detection",
                score=score,
                operation_metadata={"detection_index": number},
            )
        )
    for index, (start, end) in enumerate(segments, start=first):
        session.add(
            Clip(
                source_video_id=video.id,
                clip_identifier=segment_identifier(video.id, index),
                start_frame=start,
                end_frame=end,
                ingest_state=ClipState.PENDING_REVIEW.value,
                processing_metadata={"created_from": "scene_detection", "segment_index": index},
            )
        )
    session.flush()
    return len(segments)


def run_join_proxy(ctx: StageContext) -> None:
    with unit_of_work() as session:
        video = _video(session, ctx.entity_id)
        if video.proxy_filepath:
            ctx.complete(session)
            return
        if video.ingest_state != VideoState.ENCODING.value:
            raise InvalidTransition("video", ctx.entity_id, "join the proxy of", video.ingest_state)
        rows = _chunks(session, ctx.entity_id)
        if not rows or any(r.encoded_at is None for r in rows) or video.frame_count is None or video.fps is None:
            raise PermanentError("Not every chunk of the proxy is encoded yet; the join runs when they are.")
        parts = [(r.chunk_index, r.filepath) for r in rows if r.filepath]
        original_key, title, fps, total = video.filepath or "", video.title, video.fps, video.frame_count

    storage = get_storage()
    local = []
    for index, key in parts:
        path = ctx.work_dir / f"chunk-{index:05d}.mp4"
        storage.download_file(key, path)
        local.append(path)
        ctx.check()
    url = storage.presigned_get(original_key, expires_in=SOURCE_URL_TTL_SECONDS)
    source_info = probe(url, timeout=120.0)
    proxy = join_chunks(
        local,
        url,
        ctx.work_dir,
        fps=fps,
        expected_frames=total,
        source_info=source_info,
        timeout=ctx.settings.ffmpeg_timeout_seconds,
    )
    ctx.check()
    key = keys.proxy_key(title, ctx.entity_id)
    storage.upload_file(proxy.path, key)
    info = proxy.info
    with unit_of_work() as session:
        service.transition(
            session,
            ctx.entity_id,
            VideoState.ENCODED,
            proxy_filepath=key,
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
            encoded_at=datetime.now(UTC),
            progress=None,
            last_error=None,
        )
        session.execute(
            update(ProxyChunk).where(col(ProxyChunk.source_video_id) == ctx.entity_id).values(filepath=None)
        )
        ctx.complete(session)
        if ctx.settings.master_enabled:
            schedule(session, Stage.MASTER, ctx.entity_id)
        waiting = session.execute(
            text(
                "SELECT id FROM clips WHERE source_video_id = :video AND ingest_state = :state "
                "AND clip_filepath IS NULL ORDER BY id"
            ),
            {"video": ctx.entity_id, "state": ClipState.REVIEW_APPROVED.value},
        ).scalars()
        for clip_id in waiting:
            schedule(session, Stage.EXPORT, int(clip_id))
    _publish_state(ctx.entity_id, VideoState.ENCODED)
    # Chunk files are no longer named anywhere; a temp clip being cut from them right now falls back to the proxy.
    storage.delete(*(key for _, key in parts if key))
    log.info("video.join_proxy %s: %s chunks, %s frames", ctx.entity_id, len(parts), info.frame_count)
