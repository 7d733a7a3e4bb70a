"""A worker cuts one temp clip: stream copy of [start_frame, end_frame) from the proxy's signed URL.

FFmpeg seeks over HTTP ranges (the proxy is never downloaded whole). The result is checked before it
counts: the frames ffmpeg wrote (its `-progress` report) must equal the segment's length. Only then is
it renamed into the cache (and, when playback is shared, uploaded to S3), marked ready, and announced to
the pages showing the clip. Any failure is recorded on the row and announced too, so a page shows the
error and a Retry, never a spinner.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from heaters import metrics
from heaters.adapters import get_media_urls, get_playback_cache, get_storage
from heaters.db import unit_of_work
from heaters.errors import PermanentError
from heaters.media.ffmpeg import chunk_inpoint
from heaters.media.segments import copy_chunked_segment, copy_segment
from heaters.pipeline.claims import worker_identity
from heaters.pipeline.runner import error_message
from heaters.playback import names, service
from heaters.playback.cache import PlaybackCache
from heaters.settings import get_settings
from heaters.storage.s3 import redact_signed_urls
from heaters.videos.chunk_encode import write_concat_list

log = logging.getLogger(__name__)
URL_TTL_SECONDS = 600  # long enough for one stream copy; the URL never reaches a browser


def cut(job: service.GenerationJob, source: str, cache: PlaybackCache, *, timeout: float) -> Path:
    """The frames of one clip into the cache, verified; the partial file never outlives a failure."""
    if job.fps is None or job.proxy_key is None:
        raise PermanentError("The video has no proxy to cut this clip from.")
    part = cache.partial(job.filename)
    try:
        copy_segment(
            source,
            part,
            start_frame=job.start_frame,
            end_frame=job.end_frame,
            fps=job.fps,
            frame_count=job.frame_count,
            timeout=timeout,
            what="The temp clip",
        )
        return cache.commit(part, job.filename)
    finally:
        part.unlink(missing_ok=True)


def cut_from_chunks(job: service.GenerationJob, cache: PlaybackCache, *, timeout: float) -> Path:
    """A clip of a video still being encoded: video copied from its chunk files, audio from the original."""
    if job.fps is None or not job.chunks:
        raise PermanentError("The part of the video holding this clip is not encoded yet.")
    urls = get_media_urls()
    part = cache.partial(job.filename)
    listing = part.with_name(part.name + ".ffconcat")
    try:
        write_concat_list(
            [urls.get_url(key, expires_in=URL_TTL_SECONDS) for key, _ in job.chunks],
            listing,
            inpoint=chunk_inpoint(job.start_frame, job.chunks[0][1], job.fps),
        )
        audio = get_storage().presigned_get(job.original_key, expires_in=URL_TTL_SECONDS) if job.original_key else None
        copy_chunked_segment(
            listing,
            audio,
            part,
            offset_frames=job.chunks[0][1],
            start_frame=job.start_frame,
            end_frame=job.end_frame,
            fps=job.fps,
            timeout=timeout,
            what="The temp clip",
        )
        return cache.commit(part, job.filename)
    finally:
        part.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def _cut_any(job: service.GenerationJob, timeout: float) -> Path:
    """From the proxy; from the chunks while there is none, or from the proxy if it was joined meanwhile."""
    cache = get_playback_cache()
    if job.proxy_key is None and job.chunks:
        try:
            return cut_from_chunks(job, cache, timeout=timeout)
        except Exception:
            with unit_of_work() as session:
                proxy_key = service.proxy_of_clip(session, job.clip_id)
            if proxy_key is None:
                raise
            log.info("temp_clips.joined clip=%s: cut from the proxy joined meanwhile", job.clip_id)
            job = replace(job, proxy_key=proxy_key)
    source = get_media_urls().get_url(job.proxy_key, expires_in=URL_TTL_SECONDS) if job.proxy_key else ""
    return cut(job, source, cache, timeout=timeout)


def generate(temp_clip_id: int) -> None:
    settings = get_settings()
    with unit_of_work() as session:
        job = service.take(
            session, temp_clip_id, worker_identity(), lease_seconds=settings.temp_clip_timeout_seconds + 30
        )
    if job is None:
        log.info("temp_clips.skipped %s: generated, taken by another worker, or gone", temp_clip_id)
        return
    started = time.perf_counter()
    try:
        path = _cut_any(job, settings.temp_clip_timeout_seconds)
        key = None
        if settings.playback_shared:
            key = names.s3_key(job.filename)
            get_storage().upload_file(path, key, content_type="video/mp4")
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        metrics.TEMP_CLIP_SECONDS.observe(elapsed_ms / 1000)
        with unit_of_work() as session:
            if not service.mark_ready(session, job, size_bytes=path.stat().st_size, generate_ms=elapsed_ms, s3_key=key):
                log.warning("temp_clips.lost %s: the row changed while it was cut", job.filename)
        log.info("temp_clips.ready clip=%s %s in %s ms", job.clip_id, job.filename, elapsed_ms)
    except Exception as error:  # recorded on the row and shown on the page with a Retry
        message = redact_signed_urls(error_message(error))
        log.error("temp_clips.failed clip=%s: %s", job.clip_id, message)
        with unit_of_work() as session:
            service.mark_failed(session, job, message)
