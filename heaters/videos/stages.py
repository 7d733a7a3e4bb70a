"""The work of each video stage: download, encode (proxy), detect scenes, encode master.

Each function takes a StageContext, moves the video through its states with the service, and writes
its results and the next stage's message in one transaction. Media work happens between
transactions, in the job's own work directory; keys reach the database only after a verified upload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session, col

from heaters import events
from heaters.adapters import get_storage
from heaters.clips.repository import pending_counts
from heaters.clips.segments import merge_short_segments, segment_identifier, segments_from_cuts
from heaters.db import unit_of_work
from heaters.errors import NotFound, PermanentError
from heaters.media.scenes import detect_cuts
from heaters.models import Clip, ClipState, Cut, SourceVideo, VideoState
from heaters.pipeline.dispatch import schedule
from heaters.pipeline.runner import StageContext
from heaters.pipeline.stages import Stage
from heaters.storage import keys
from heaters.videos import chunk_stages, service
from heaters.videos.download import download
from heaters.videos.encode import encode_master, encode_proxy

log = logging.getLogger(__name__)

StageWork = Callable[[StageContext], None]


def _video(session: Session, video_id: int) -> SourceVideo:
    video = session.get(SourceVideo, video_id, populate_existing=True)
    if video is None:
        raise NotFound(f"video {video_id} no longer exists")
    return video


def _fetch(key: str, work_dir: Path, name: str) -> Path:
    path = work_dir / f"{name}{Path(key).suffix or '.mp4'}"
    get_storage().download_file(key, path)
    return path


def run_download(ctx: StageContext) -> None:
    with unit_of_work() as session:
        video = _video(session, ctx.entity_id)
        if video.filepath:  # already downloaded: only the hand-off is missing
            ctx.complete(session)
            schedule(session, Stage.ENCODE, ctx.entity_id)
            return
        if not video.original_url:
            raise PermanentError("This video has no URL to download.")
        service.transition(session, ctx.entity_id, VideoState.DOWNLOADING, progress=0.0, last_error=None)
        url, title = video.original_url, video.title
    events.publish(
        "video.state",
        topics=events.video_topics(ctx.entity_id),
        video_id=ctx.entity_id,
        state=VideoState.DOWNLOADING.value,
    )

    downloaded = download(url, ctx.work_dir, timeout=ctx.settings.ytdlp_timeout_seconds, on_progress=ctx.progress)
    final_title = downloaded.title or title
    ctx.check()
    key = keys.original_key(final_title, ctx.entity_id, downloaded.path.name, datetime.now(UTC))
    size = get_storage().upload_file(downloaded.path, key)

    with unit_of_work() as session:
        service.transition(
            session,
            ctx.entity_id,
            VideoState.DOWNLOADED,
            filepath=key,
            title=final_title,
            original_size_bytes=size,
            downloaded_at=datetime.now(UTC),
            progress=None,
            last_error=None,
        )
        ctx.complete(session)
        schedule(session, Stage.ENCODE, ctx.entity_id)
    events.publish(
        "video.state",
        topics=events.video_topics(ctx.entity_id),
        video_id=ctx.entity_id,
        state=VideoState.DOWNLOADED.value,
    )


def run_encode(ctx: StageContext) -> None:
    """The proxy: all-intra, CFR, at most 720p. The master is its own stage, after scene detection.

    With `PROXY_CHUNK_SECONDS` > 0 (the default) this only plans the chunks (heaters.videos.chunk_stages)."""
    if ctx.settings.proxy_chunk_seconds > 0:
        chunk_stages.plan(ctx)
        return
    with unit_of_work() as session:
        video = _video(session, ctx.entity_id)
        if video.proxy_filepath:
            ctx.complete(session)
            schedule(session, Stage.DETECT_SCENES, ctx.entity_id)
            return
        if not video.filepath:
            raise PermanentError("The original file is missing; ingest the video again.")
        service.transition(session, ctx.entity_id, VideoState.ENCODING, progress=0.0, last_error=None)
        original_key, title = video.filepath, video.title
    events.publish(
        "video.state",
        topics=events.video_topics(ctx.entity_id),
        video_id=ctx.entity_id,
        state=VideoState.ENCODING.value,
    )

    source = _fetch(original_key, ctx.work_dir, "original")
    proxy = encode_proxy(
        source,
        ctx.work_dir,
        crf=ctx.settings.proxy_crf,
        timeout=ctx.settings.ffmpeg_timeout_seconds,
        on_progress=ctx.progress,
    )
    ctx.check()
    key = keys.proxy_key(title, ctx.entity_id)
    get_storage().upload_file(proxy.path, key)

    info = proxy.info
    with unit_of_work() as session:
        service.transition(
            session,
            ctx.entity_id,
            VideoState.ENCODED,
            proxy_filepath=key,
            fps_num=info.fps.numerator,
            fps_den=info.fps.denominator,
            frame_count=info.frame_count,
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
            encoded_at=datetime.now(UTC),
            progress=None,
            last_error=None,
        )
        ctx.complete(session)
        schedule(session, Stage.DETECT_SCENES, ctx.entity_id)
    events.publish(
        "video.state", topics=events.video_topics(ctx.entity_id), video_id=ctx.entity_id, state=VideoState.ENCODED.value
    )


def run_detect_scenes(ctx: StageContext) -> None:
    with unit_of_work() as session:
        video = _video(session, ctx.entity_id)
        if not video.needs_splicing:
            ctx.complete(session)
            _schedule_master(session, ctx)
            return
        if _has_scene_clips(session, ctx.entity_id):  # a previous run wrote them; only the flag is missing
            service.finish_detection(session, ctx.entity_id)
            ctx.complete(session)
            _schedule_master(session, ctx)
            return
        if not video.proxy_filepath or video.fps is None or not video.frame_count:
            raise PermanentError("The proxy or its metadata is missing; retry the encode.")
        service.transition(session, ctx.entity_id, VideoState.DETECTING_SCENES, progress=0.0, last_error=None)
        proxy_key, fps, frame_count = video.proxy_filepath, video.fps, video.frame_count
    events.publish(
        "video.state",
        topics=events.video_topics(ctx.entity_id),
        video_id=ctx.entity_id,
        state=VideoState.DETECTING_SCENES.value,
    )

    proxy = _fetch(proxy_key, ctx.work_dir, "proxy")
    min_len = max(1, round(ctx.settings.min_scene_seconds * fps))
    detected = detect_cuts(
        proxy,
        detector=ctx.settings.scene_detector,
        threshold=ctx.settings.scene_threshold,
        min_scene_len_frames=min_len,
        expected_frame_count=frame_count,
        fps=fps,
        on_progress=lambda done, total: ctx.progress(100.0 * done / max(1, total)),
    )
    kept = merge_short_segments(detected, frame_count, min_len)

    with unit_of_work() as session:
        clip_ids = write_cuts_and_clips(session, ctx.entity_id, kept, frame_count)
        service.finish_detection(session, ctx.entity_id)
        ctx.complete(session)
        _schedule_master(session, ctx)
        counts = pending_counts(session, ctx.entity_id)
        # Sent after the commit: open review queues and the counts pick the new clips up.
        events.publish(
            "video.clips_ready",
            topics=[events.COUNTS, *events.video_topics(ctx.entity_id)],
            video_id=ctx.entity_id,
            clips=len(clip_ids),
            pending_total=counts.total,
            video_pending=counts.video,
        )
    log.info("video.detect_scenes %s: %s cuts, %s clips", ctx.entity_id, len(kept), len(clip_ids))


def _schedule_master(session: Session, ctx: StageContext) -> None:
    """The archival master waits for the scan: reviewers wait on the scan, nobody waits on the master."""
    if ctx.settings.master_enabled:
        schedule(session, Stage.MASTER, ctx.entity_id)


def _has_scene_clips(session: Session, video_id: int) -> bool:
    query = select(col(Clip.id)).where(col(Clip.source_video_id) == video_id).limit(1)
    return session.execute(query).first() is not None


def write_cuts_and_clips(
    session: Session, video_id: int, cuts: Sequence[tuple[int, float]], frame_count: int
) -> list[int]:
    """Cuts and the clips between them, in the caller's transaction: all or nothing."""
    frames = [int(cut[0]) for cut in cuts]
    for index, cut in enumerate(cuts, start=1):
        score = float(cut[1]) if cut[1] == cut[1] else None  # NaN means the detector gave no score
        session.add(
            Cut(
                source_video_id=video_id,
                frame_number=int(cut[0]),
                source="scene_detection",
                score=score,
                operation_metadata={"detection_index": index},
            )
        )
    clips = [
        Clip(
            source_video_id=video_id,
            clip_identifier=segment_identifier(video_id, index),
            start_frame=start,
            end_frame=end,
            ingest_state=ClipState.PENDING_REVIEW.value,
            processing_metadata={"created_from": "scene_detection", "segment_index": index},
        )
        for index, (start, end) in enumerate(segments_from_cuts(frames, frame_count), start=1)
    ]
    session.add_all(clips)
    session.flush()
    return [clip.id for clip in clips if clip.id is not None]


def run_encode_master(ctx: StageContext) -> None:
    with unit_of_work() as session:
        video = _video(session, ctx.entity_id)
        if video.master_filepath or not ctx.settings.master_enabled:
            ctx.complete(session)
            return
        if not video.filepath:
            raise PermanentError("The original file is missing; ingest the video again.")
        original_key, title = video.filepath, video.title

    source = _fetch(original_key, ctx.work_dir, "original")
    master = encode_master(
        source,
        ctx.work_dir,
        crf=ctx.settings.master_crf,
        timeout=ctx.settings.ffmpeg_timeout_seconds,
        on_progress=None,
    )
    ctx.check()
    key = keys.master_key(title, ctx.entity_id)
    get_storage().upload_file(master.path, key)
    with unit_of_work() as session:
        service.set_master(session, ctx.entity_id, key)
        ctx.complete(session)
    events.publish("video.master_ready", topics=events.video_topics(ctx.entity_id), video_id=ctx.entity_id)
