"""Temp clip names, keys and URLs. Pure: the media route trusts nothing that does not match these."""

from __future__ import annotations

import re

PATTERN = re.compile(r"clip_([0-9]{1,12})_([0-9]{1,16})\.mp4")  # ASCII digits only, never \d
# What PlaybackCache.partial() writes before the rename: `.clip_<id>_<ms>.mp4.<hex>.part`.
PARTIAL = re.compile(r"\.clip_[0-9]{1,12}_[0-9]{1,16}\.mp4\.[0-9a-f]{1,32}\.part")
S3_PREFIX = "playback/"
ROUTE_PREFIX = "/media/temp/"


def temp_filename(clip_id: int, millis: int) -> str:
    """`clip_{id}_{unix ms}.mp4`: a new name for each generation, so a URL's bytes never change."""
    if clip_id < 1 or millis < 0:
        raise ValueError("clip id and time must be positive")
    return f"clip_{clip_id}_{millis}.mp4"


def parse(name: str) -> int | None:
    """The clip id in a valid temp clip name, else None (`..`, slashes, NUL, other names)."""
    match = PATTERN.fullmatch(name)
    return int(match.group(1)) if match else None


def s3_key(filename: str) -> str:
    if parse(filename) is None:
        raise ValueError(f"not a temp clip name: {filename!r}")
    return S3_PREFIX + filename


def media_url(filename: str) -> str:
    """Where a browser fetches it: our own signed-in route, on the page's origin."""
    if parse(filename) is None:
        raise ValueError(f"not a temp clip name: {filename!r}")
    return ROUTE_PREFIX + filename
