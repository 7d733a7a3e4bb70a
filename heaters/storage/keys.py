"""S3 key layout (reference section 7.1), with extensions always kept. Pure: no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_UNDERSCORES = re.compile(r"_+")
MAX_NAME = 100
MAX_KEY = 1024


def sanitize(name: str | None, *, fallback: str = "default") -> str:
    """Every character outside [A-Za-z0-9_-] becomes `_`, runs collapse, ends trimmed, 100 chars."""
    cleaned = _UNDERSCORES.sub("_", _UNSAFE.sub("_", name or "")).strip("_")[:MAX_NAME].strip("_")
    return cleaned or fallback


def _ext(filename: str, default: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower().lstrip(".")
    return suffix if re.fullmatch(r"[a-z0-9]{1,5}", suffix) else default


def original_key(title: str | None, video_id: int, source_name: str, now: datetime) -> str:
    stamp = f"{now:%Y%m%d_%H%M%S}"
    return f"originals/{sanitize(title, fallback='unknown')}_{video_id}_{stamp}.{_ext(source_name, 'mp4')}"


def proxy_key(title: str | None, video_id: int) -> str:
    return f"proxies/{sanitize(title, fallback='unknown')}_{video_id}_proxy.mp4"


def chunk_key(video_id: int, index: int) -> str:
    """A proxy chunk: kept until the chunks are joined into the proxy."""
    return f"proxy_chunks/{video_id}/{index:05d}.mp4"


def master_key(title: str | None, video_id: int) -> str:
    return f"masters/{sanitize(title, fallback='unknown')}_{video_id}_master.mp4"


def clip_key(title: str | None, clip_identifier: str, clip_id: int) -> str:
    return f"clips/{sanitize(title, fallback=f'clip_{clip_id}')}_{sanitize(clip_identifier)}.mp4"


def keyframe_key(clip_id: int, strategy: str, position: int, ext: str = "jpg", *, run: str | None = None) -> str:
    """One key per run, so a retry never writes over (or collides with) a half-finished earlier one."""
    suffix = f"_{sanitize(run)}" if run is not None else ""
    return f"artifacts/keyframes/clip_{clip_id}_{sanitize(strategy)}_{position}{suffix}.{ext}"


def validate_key(key: str) -> str:
    """Keys we write are relative, short and free of empty segments."""
    if not key or len(key) > MAX_KEY or key.startswith("/") or key.endswith("/") or "//" in key:
        raise ValueError(f"invalid storage key: {key!r}")
    return key


def strip_s3_uri(value: str, bucket: str) -> str:
    """`s3://bucket/key` and plain keys both mean the key."""
    prefix = f"s3://{bucket}/"
    return value[len(prefix) :] if value.startswith(prefix) else value
