"""The work of each clip stage after review: export, keyframes, embedding (and the default-variant backfill).

Same shape as the video stages: a short transaction moves the clip into the stage's running state, media
work happens in the job's directory, and one transaction writes the results, the next state, the claim's
success and the next stage's message. An S3 key reaches the database only after a verified upload.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import text
from sqlmodel import Session

from heaters import events
from heaters.adapters import get_media_urls, get_storage
from heaters.clips import service
from heaters.clips.variants import generation_strategy, keyframe_frames, keyframe_strategy
from heaters.db import unit_of_work
from heaters.errors import NotFound, PermanentError, TransientError
from heaters.media.ffmpeg import single_frame_args
from heaters.media.segments import copy_segment
from heaters.media.tools import MediaToolError, MediaToolTimeout, run_tool
from heaters.models import Clip, ClipState, SourceVideo
from heaters.models.states import ArtifactType, GenerationStrategy, KeyframeStrategy
from heaters.pipeline.dispatch import schedule
from heaters.pipeline.runner import StageContext
from heaters.pipeline.stages import Stage
from heaters.storage import keys
from heaters.storage.s3 import StorageError, redact_signed_urls

log = logging.getLogger(__name__)

C = ClipState
URL_TTL_SECONDS = 3600  # ffmpeg reads the proxy through it; it never reaches a browser
FRAMES_META = "frames"  # x-amz-meta-frames on an exported clip: a complete object says how many it holds


@dataclass(frozen=True)
class ClipSource:
    """What a clip stage needs to know, read once in its first transaction."""

    clip_id: int
    video_id: int
    identifier: str
    title: str | None
    start_frame: int
    end_frame: int
    fps: Fraction
    proxy_key: str | None
    frame_count: int | None
    clip_key: str | None
    grouped_with: int | None


def _source(session: Session, clip_id: int) -> ClipSource:
    clip = session.get(Clip, clip_id, populate_existing=True)
    if clip is None or clip.id is None:
        raise NotFound(f"clip {clip_id} no longer exists")
    video = session.get(SourceVideo, clip.source_video_id)
    if video is None or video.fps is None:
        raise PermanentError("The clip's video has no proxy metadata (frame rate); retry the video's encode.")
    return ClipSource(
        clip.id,
        clip.source_video_id,
        clip.clip_identifier,
        video.title,
        clip.start_frame,
        clip.end_frame,
        video.fps,
        video.proxy_filepath,
        video.frame_count,
        clip.clip_filepath,
        clip.grouped_with_clip_id,
    )


def _announce(source: ClipSource, state: ClipState) -> None:
    events.publish(
        "clip.state",
        topics=events.clip_topics(source.clip_id, source.video_id),
        clip_id=source.clip_id,
        video_id=source.video_id,
        state=state.value,
    )


def _begin(
    ctx: StageContext, running: ClipState, done: frozenset[ClipState], result: ClipState, next_stage: Stage | None
) -> ClipSource | None:
    """Enter the running state; None when a previous run already got further (only the hand-off may be missing)."""
    with unit_of_work() as session:
        source = _source(session, ctx.entity_id)
        clip = session.get(Clip, ctx.entity_id)
        assert clip is not None
        state = ClipState(clip.ingest_state)
        if state in done:
            ctx.complete(session)
            if state is result and next_stage is not None:
                schedule(session, next_stage, ctx.entity_id)
            return None
        service.transition(session, ctx.entity_id, running, last_error=None)
        _announce(source, running)
    return source


@contextmanager
def _remote_read(what: str) -> Iterator[None]:
    """FFmpeg reading over HTTP fails the same way for a missing object and a network hiccup: both are
    worth the bounded retries (a timeout is not: each attempt would cost the whole limit again)."""
    try:
        yield
    except MediaToolTimeout:
        raise
    except MediaToolError as error:
        # `from None`: the tool's own error quotes the signed URL, and a traceback would log it whole.
        raise TransientError(f"Could not read {what}: {redact_signed_urls(str(error))}") from None


# ---- export -------------------------------------------------------------------------------------------


def _too_early(ctx: StageContext) -> bool:
    """An approval younger than the grace period (re-approved after an undo, or grouped since) waits for
    the rest of it: the message goes out again for then, and an undo meanwhile is never refused."""
    if not ctx.settings.export_grace_seconds:
        return False
    with unit_of_work() as session:
        row = session.execute(
            text(
                "SELECT EXTRACT(EPOCH FROM (reviewed_at + make_interval(secs => :grace) - now())) FROM clips "
                "WHERE id = :id AND ingest_state = :approved AND reviewed_at IS NOT NULL"
            ),
            {"grace": ctx.settings.export_grace_seconds, "id": ctx.entity_id, "approved": C.REVIEW_APPROVED.value},
        ).first()
        remaining = float(row[0]) if row and row[0] is not None else 0.0
        if remaining <= 0:
            return False
        ctx.complete(session)
        schedule(session, Stage.EXPORT, ctx.entity_id, delay_ms=int(remaining * 1000) + 250)
    return True


def run_export(ctx: StageContext) -> None:
    """Stream copy [start_frame, end_frame) from the proxy to `clips/{title}_{identifier}.mp4`, verified."""
    if _too_early(ctx):
        return
    later = frozenset({C.EXPORTED, C.KEYFRAMING, C.KEYFRAMED, C.KEYFRAME_FAILED, C.EMBEDDING, C.EMBEDDED})
    source = _begin(ctx, C.EXPORTING, later | {C.EMBEDDING_FAILED}, C.EXPORTED, Stage.KEYFRAMES)
    if source is None:
        return
    if not source.proxy_key:
        raise PermanentError("The clip's video has no proxy to export from; retry the video's encode.")
    key = keys.clip_key(source.title, source.identifier, source.clip_id)
    expected = source.end_frame - source.start_frame
    storage = get_storage()
    present = storage.head(key)
    if present is not None and present.size > 0 and present.metadata.get(FRAMES_META) == str(expected):
        size = present.size  # a previous run uploaded it whole and died before recording it
        log.info("clip.export %s: %s is already complete", source.clip_id, key)
    else:
        path = ctx.work_dir / Path(key).name
        url = get_media_urls().get_url(source.proxy_key, expires_in=URL_TTL_SECONDS)
        with _remote_read(f"the video's proxy {source.proxy_key}"):
            copy_segment(
                url,
                path,
                start_frame=source.start_frame,
                end_frame=source.end_frame,
                fps=source.fps,
                frame_count=source.frame_count,
                timeout=ctx.settings.ffmpeg_timeout_seconds,
                what="The exported clip",
            )
        ctx.check()
        metadata = {FRAMES_META: str(expected), "clip-id": str(source.clip_id)}
        if source.grouped_with is not None:
            metadata["grouped-with"] = str(source.grouped_with)
        size = storage.upload_file(path, key, content_type="video/mp4", metadata=metadata)

    with unit_of_work() as session:
        clip = session.get(Clip, source.clip_id, populate_existing=True)
        assert clip is not None
        exported = {"frames": expected, "bytes": size, "seconds": round(float(expected / source.fps), 3)}
        service.transition(
            session,
            source.clip_id,
            C.EXPORTED,
            clip_filepath=key,
            last_error=None,
            processing_metadata={**clip.processing_metadata, "export": exported},
        )
        ctx.complete(session)
        schedule(session, Stage.KEYFRAMES, source.clip_id)
        _announce(source, C.EXPORTED)


# ---- keyframes ----------------------------------------------------------------------------------------


def _extract_keyframes(ctx: StageContext, source: ClipSource, strategy: KeyframeStrategy) -> list[dict[str, Any]]:
    """Decode each keyframe at its exact frame of the exported clip and upload it under this attempt's key."""
    if not source.clip_key:
        raise PermanentError("The clip has not been exported yet.")
    url = get_media_urls().get_url(source.clip_key, expires_in=URL_TTL_SECONDS)
    rows: list[dict[str, Any]] = []
    # The attempt number for a human, a random part because attempts start again when the work is wanted again.
    run = f"a{ctx.claim.attempts}-{secrets.token_hex(3)}"
    for position, local in enumerate(keyframe_frames(source.start_frame, source.end_frame, strategy)):
        path = ctx.work_dir / f"keyframe_{strategy.value}_{position}.jpg"
        with _remote_read(f"the exported clip {source.clip_key}"):
            run_tool(
                single_frame_args(url, path, frame=local, fps=source.fps), timeout=ctx.settings.ffmpeg_timeout_seconds
            )
        ctx.check()
        key = keys.keyframe_key(source.clip_id, strategy.value, position, run=run)
        get_storage().upload_file(path, key, content_type="image/jpeg")
        rows.append(
            {
                "position": position,
                "s3_key": key,
                "path": path,
                "metadata": {
                    "frame": source.start_frame + local,
                    "local_frame": local,
                    "timestamp": round(float(local / source.fps), 6),
                    "strategy": strategy.value,
                },
            }
        )
    return rows


def _save_keyframes(session: Session, clip_id: int, strategy: KeyframeStrategy, rows: list[dict[str, Any]]) -> set[str]:
    """One row per image, replacing an earlier run's; returns the keys of the objects no row names any more."""
    replaced = session.execute(
        text("SELECT s3_key FROM clip_artifacts WHERE clip_id = :clip AND artifact_type = :type AND strategy = :s"),
        {"clip": clip_id, "type": ArtifactType.KEYFRAME.value, "s": strategy.value},
    ).scalars()
    stale = set(replaced) - {row["s3_key"] for row in rows}
    session.execute(
        text("DELETE FROM clip_artifacts WHERE clip_id = :clip AND artifact_type = :type AND strategy = :s"),
        {"clip": clip_id, "type": ArtifactType.KEYFRAME.value, "s": strategy.value},
    )
    for row in rows:
        session.execute(
            text(
                "INSERT INTO clip_artifacts (clip_id, artifact_type, strategy, position, s3_key, metadata) "
                "VALUES (:clip, :type, :strategy, :position, :key, CAST(:metadata AS jsonb))"
            ),
            {
                "clip": clip_id,
                "type": ArtifactType.KEYFRAME.value,
                "strategy": strategy.value,
                "position": row["position"],
                "key": row["s3_key"],
                "metadata": _json(row["metadata"]),
            },
        )
    return stale


def _orphans(clip_id: int, strategy: KeyframeStrategy, rows: list[dict[str, Any]]) -> set[str]:
    """Images an attempt uploaded before it died (no row ever named them): found by their prefix."""
    prefix = keys.keyframe_key(clip_id, strategy.value, 0).rsplit("_", 1)[0] + "_"
    kept = {row["s3_key"] for row in rows}
    try:
        return {key for key in get_storage().list_keys(prefix) if key not in kept}
    except StorageError as error:
        log.warning("keyframes: could not list %s: %s", prefix, error)
        return set()


def _drop_objects(stale: set[str]) -> None:
    """After the commit that stopped naming them; a failure leaves litter, never a dangling row."""
    if not stale:
        return
    try:
        get_storage().delete(*sorted(stale))
    except StorageError as error:
        log.warning("keyframes: could not delete replaced objects %s: %s", sorted(stale), error)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)


def run_keyframes(ctx: StageContext) -> None:
    later = frozenset({C.KEYFRAMED, C.EMBEDDING, C.EMBEDDED, C.EMBEDDING_FAILED})
    source = _begin(ctx, C.KEYFRAMING, later, C.KEYFRAMED, Stage.EMBED)
    if source is None:
        return
    strategy = keyframe_strategy(ctx.settings)
    rows = _extract_keyframes(ctx, source, strategy)
    with unit_of_work() as session:
        stale = _save_keyframes(session, source.clip_id, strategy, rows)
        service.transition(session, source.clip_id, C.KEYFRAMED, last_error=None)
        ctx.complete(session)
        schedule(session, Stage.EMBED, source.clip_id)
        _announce(source, C.KEYFRAMED)
    _drop_objects(stale | _orphans(source.clip_id, strategy, rows))


# ---- embeddings ---------------------------------------------------------------------------------------


def _keyframe_images(ctx: StageContext, source: ClipSource, strategy: KeyframeStrategy) -> list[Image.Image]:
    """The clip's keyframes of this strategy, made now if it has none (a backfill after a strategy change)."""
    with unit_of_work() as session:
        stored = session.execute(
            text(
                "SELECT s3_key FROM clip_artifacts WHERE clip_id = :clip AND artifact_type = :type "
                "AND strategy = :s ORDER BY position"
            ),
            {"clip": source.clip_id, "type": ArtifactType.KEYFRAME.value, "s": strategy.value},
        ).scalars()
        stored_keys = list(stored)
    paths: list[Path] = []
    if stored_keys:
        for index, key in enumerate(stored_keys):
            path = ctx.work_dir / f"embed_{index}.jpg"
            get_storage().download_file(key, path)
            paths.append(path)
    else:
        rows = _extract_keyframes(ctx, source, strategy)
        with unit_of_work() as session:
            stale = _save_keyframes(session, source.clip_id, strategy, rows)
        _drop_objects(stale)
        paths = [row["path"] for row in rows]
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    return images


def combine(vectors: np.ndarray, strategy: GenerationStrategy) -> np.ndarray:
    """One vector per clip: the mean of its keyframes' (renormalised), or the first keyframe's."""
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError("need at least one vector")
    vector = vectors.mean(axis=0) if strategy is GenerationStrategy.KEYFRAME_MULTI_AVG else vectors[0]
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0:
        raise PermanentError("The model produced an empty embedding for this clip.")
    return (vector / norm).astype(np.float32)


def _embed(ctx: StageContext, source: ClipSource) -> tuple[str, str, GenerationStrategy, np.ndarray]:
    from heaters.embeddings import get_embedder

    embedder = get_embedder(ctx.settings.embedding_model, clip_model_path=ctx.settings.clip_model_path)
    strategy = generation_strategy(ctx.settings)
    images = _keyframe_images(ctx, source, keyframe_strategy(ctx.settings))
    vector = combine(embedder.embed(images), strategy)
    ctx.check()
    return embedder.name, embedder.version, strategy, vector


def save_embedding(
    session: Session, clip_id: int, model: str, version: str, strategy: GenerationStrategy, vector: np.ndarray
) -> None:
    """Upsert by (clip, model, strategy): a re-run replaces the vector, never adds a second row."""
    session.execute(
        text(
            "INSERT INTO embeddings "
            "(clip_id, model_name, model_version, generation_strategy, embedding_dim, embedding) "
            "VALUES (:clip, :model, :version, :strategy, :dim, CAST(:vector AS vector)) "
            "ON CONFLICT (clip_id, model_name, generation_strategy) DO UPDATE SET embedding = EXCLUDED.embedding, "
            "embedding_dim = EXCLUDED.embedding_dim, model_version = EXCLUDED.model_version, updated_at = now()"
        ),
        {
            "clip": clip_id,
            "model": model,
            "version": version,
            "strategy": strategy.value,
            "dim": int(vector.shape[0]),
            "vector": "[" + ",".join(f"{x:.8g}" for x in vector.tolist()) + "]",
        },
    )


def run_embed(ctx: StageContext) -> None:
    source = _begin(ctx, C.EMBEDDING, frozenset({C.EMBEDDED}), C.EMBEDDED, None)
    if source is None:
        return
    model, version, strategy, vector = _embed(ctx, source)
    with unit_of_work() as session:
        save_embedding(session, source.clip_id, model, version, strategy, vector)
        service.transition(session, source.clip_id, C.EMBEDDED, embedded_at=datetime.now(UTC), last_error=None)
        ctx.complete(session)
        _announce(source, C.EMBEDDED)


def run_backfill(ctx: StageContext) -> None:
    """The configured default variant for a clip embedded with another; its state stays `embedded`."""
    with unit_of_work() as session:
        source = _source(session, ctx.entity_id)
    model, version, strategy, vector = _embed(ctx, source)
    with unit_of_work() as session:
        save_embedding(session, source.clip_id, model, version, strategy, vector)
        # An embedded clip's only error can be an earlier backfill attempt's note: it is stale now.
        session.execute(text("UPDATE clips SET last_error = NULL WHERE id = :id"), {"id": source.clip_id})
        ctx.complete(session)
