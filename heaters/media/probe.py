"""ffprobe a file or URL into `MediaInfo`, or explain in plain words why it is not a usable video.

Frame rate: `r_frame_rate` (the stream's nominal rate; for our CFR proxy it is exact), unless it is
missing or implausible (0/0, or above 240 fps, as mkv/webm and VFR phone files report 1000/1 or 90000/1),
in which case `avg_frame_rate` (frames / duration) is used. Both are kept on `MediaInfo` so a caller can
see a variable frame rate source.

Frame count: the container's `nb_frames` when present (mp4 stores it; exact for the all-intra CFR proxy),
otherwise ffprobe `-count_packets` (demux only, no decode: cheap even for long files).

Width and height are the displayed size: a phone's portrait video coded 1920x1080 with 90° rotation
metadata reports 1080x1920, which is also what ffmpeg's auto-rotation gives the proxy.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from heaters.errors import PermanentError, TransientError
from heaters.media.tools import MediaToolError, MediaToolTimeout, run_tool

FFPROBE = "ffprobe"
MIN_FRAMES = 2  # one frame is a picture; two frames are the least that can be played, cut and reviewed
MAX_PLAUSIBLE_FPS = Fraction(240)
# Demuxers that read single pictures (image2, and png_pipe/jpeg_pipe/... chosen by content); ffmpeg presents
# them as a one-frame "video" stream. Animated GIF/APNG have their own demuxers and count as videos.
_IMAGE_FORMATS = {"image2"}
_STILL_CODECS = {"png", "mjpeg", "jpeg2000", "bmp", "tiff", "webp", "gif", "jpegls", "qoi", "pam", "ppm"}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_NETWORK_TROUBLE = (
    "Connection refused",
    "Connection timed out",
    "timed out",
    "Server returned 5",
    "Network is unreachable",
    "Temporary failure in name resolution",
)


class UnsupportedMedia(PermanentError):
    """The input is not a video Heaters can use; the message is meant for the person who supplied it."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason  # stable code for tests and UI: empty, not_media, truncated, no_video, ...
        super().__init__(message)


class MediaUnreachable(TransientError):
    """A URL could not be read right now (network, server error): worth another attempt later."""


@dataclass(frozen=True)
class MediaInfo:
    """What the pipeline needs to know about a video; fps is exact, sizes are as displayed."""

    fps: Fraction
    frame_count: int
    duration_seconds: float
    width: int
    height: int
    has_audio: bool
    video_codec: str
    container: str
    rotation: int = 0  # display-matrix rotation as ffprobe reports it, 0..359; a quarter turn swaps w/h
    r_frame_rate: Fraction | None = None
    avg_frame_rate: Fraction | None = None

    @property
    def variable_frame_rate(self) -> bool:
        """True when the nominal and the average rate differ by more than 1 % (phones, screen recorders)."""
        if not self.r_frame_rate or not self.avg_frame_rate:
            return False
        return abs(self.r_frame_rate - self.avg_frame_rate) > self.r_frame_rate / 100


def is_url(path_or_url: str | os.PathLike[str]) -> bool:
    return bool(_URL.match(os.fspath(path_or_url)))


def probe_args(path_or_url: str | os.PathLike[str]) -> list[str]:
    return [
        FFPROBE,
        "-v",
        "error",
        "-hide_banner",
        "-of",
        "json",
        "-show_format",
        "-show_streams",
        os.fspath(path_or_url),
    ]


def count_packets_args(path_or_url: str | os.PathLike[str], stream_index: int) -> list[str]:
    return [
        FFPROBE,
        "-v",
        "error",
        "-hide_banner",
        "-of",
        "json",
        "-count_packets",
        "-select_streams",
        str(stream_index),
        "-show_entries",
        "stream=nb_read_packets",
        os.fspath(path_or_url),
    ]


def probe(path_or_url: str | os.PathLike[str], *, timeout: float, min_frames: int = MIN_FRAMES) -> MediaInfo:
    """Describe a video, or raise `UnsupportedMedia` (bad input) / `MediaUnreachable` (URL trouble).

    `min_frames=1` is for our own pieces of a proxy: the last chunk of a video may be one frame."""
    source = os.fspath(path_or_url)
    remote = is_url(source)
    if not remote:
        _check_local_file(Path(source))
    try:
        data = json.loads(run_tool(probe_args(source), timeout=timeout).stdout_text or "{}")
    except MediaToolError as exc:
        raise _explain_failure(source, exc, remote) from exc
    return describe(data, frame_counter=lambda index: _count_packets(source, index, timeout), min_frames=min_frames)


def describe(
    data: dict[str, Any],
    *,
    frame_counter: Callable[[int], int | None] | None = None,
    min_frames: int = MIN_FRAMES,
) -> MediaInfo:
    """Turn ffprobe's `-show_format -show_streams` JSON into MediaInfo (pure, given a frame counter)."""
    streams: list[dict[str, Any]] = data.get("streams") or []
    fmt: dict[str, Any] = data.get("format") or {}
    container = str(fmt.get("format_name") or "")
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    videos = [
        s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        if has_audio:
            raise UnsupportedMedia("The file has no video stream (audio only).", reason="no_video")
        raise UnsupportedMedia("The file has no video stream.", reason="no_video")
    video = videos[0]
    codec = str(video.get("codec_name") or "unknown")
    if container in _IMAGE_FORMATS or container.endswith("_pipe"):
        raise UnsupportedMedia(f"This is a still image ({codec}), not a video.", reason="still_image")

    coded_w, coded_h = int(video.get("width") or 0), int(video.get("height") or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise UnsupportedMedia("The video stream has no picture size; the file may be damaged.", reason="no_size")
    rotation = _rotation(video)
    width, height = (coded_h, coded_w) if rotation % 180 == 90 else (coded_w, coded_h)

    r_rate, avg_rate = _fraction(video.get("r_frame_rate")), _fraction(video.get("avg_frame_rate"))
    fps = choose_fps(r_rate, avg_rate)
    if fps is None:
        raise UnsupportedMedia(
            "The video's frame rate cannot be determined; the file may be damaged.", reason="no_frame_rate"
        )

    frame_count = _int(video.get("nb_frames"))
    if frame_count is None and frame_counter is not None:
        frame_count = frame_counter(int(video.get("index", 0)))
    if frame_count is None:
        raise UnsupportedMedia("The video's frames cannot be counted; the file may be damaged.", reason="no_frames")
    if frame_count == 1 and codec in _STILL_CODECS:
        raise UnsupportedMedia(f"This is a still image ({codec}), not a video.", reason="still_image")
    if frame_count < min_frames:
        noun = "frame" if frame_count == 1 else "frames"
        raise UnsupportedMedia(
            f"The video has only {frame_count} {noun}; need at least {min_frames}.", reason="too_few_frames"
        )

    duration = _float(video.get("duration")) or _float(fmt.get("duration")) or float(frame_count / fps)
    return MediaInfo(
        fps=fps,
        frame_count=frame_count,
        duration_seconds=duration,
        width=width,
        height=height,
        has_audio=has_audio,
        video_codec=codec,
        container=container,
        rotation=rotation,
        r_frame_rate=r_rate,
        avg_frame_rate=avg_rate,
    )


def choose_fps(r_frame_rate: Fraction | None, avg_frame_rate: Fraction | None) -> Fraction | None:
    """r_frame_rate when plausible, else avg_frame_rate when plausible, else None."""
    for rate in (r_frame_rate, avg_frame_rate):
        if rate is not None and 0 < rate <= MAX_PLAUSIBLE_FPS:
            return rate
    return None


def _check_local_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnsupportedMedia(f"The file does not exist: {path.name}", reason="missing") from None
    if path.is_dir():
        raise UnsupportedMedia(f"{path.name} is a folder, not a video file.", reason="not_media")
    if size == 0:
        raise UnsupportedMedia("The file is empty (0 bytes).", reason="empty")


def _count_packets(source: str, stream_index: int, timeout: float) -> int | None:
    try:
        result = run_tool(count_packets_args(source, stream_index), timeout=timeout)
    except MediaToolError as exc:
        raise _explain_failure(source, exc, is_url(source)) from exc
    streams = json.loads(result.stdout_text or "{}").get("streams") or [{}]
    return _int(streams[0].get("nb_read_packets"))


def _explain_failure(source: str, exc: MediaToolError, remote: bool) -> Exception:
    """Map ffprobe's complaint to a sentence a person can act on."""
    detail = useful_line(exc.stderr_tail, source)
    if remote and (isinstance(exc, MediaToolTimeout) or any(t in exc.stderr_tail for t in _NETWORK_TROUBLE)):
        return MediaUnreachable(f"The video could not be read from its URL right now: {detail or exc}")
    if isinstance(exc, MediaToolTimeout):
        return UnsupportedMedia(
            f"Reading the file took longer than {exc.timeout:g} s; it may be damaged.", reason="timeout"
        )
    # FFmpeg picks its mov demuxer only for data that starts like an MP4, so over a URL (a chunked encode
    # probes the original where it is stored) the complaint alone says as much as the local header check.
    if "moov atom not found" in exc.stderr_tail and (remote or _looks_like_mp4(Path(source))):
        return UnsupportedMedia(
            "The MP4 file is incomplete: its index (moov atom) is missing, so the upload or download was "
            "probably cut short. Upload the complete file again.",
            reason="truncated",
        )
    return UnsupportedMedia(
        f"This file is not a video FFmpeg can read: {detail or 'no details given'}", reason="not_media"
    )


def useful_line(stderr: str, source: str) -> str:
    """ffprobe's summary line ('<input>: Invalid data found ...') without the path; else its first line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(f"{source}: "):
            return line.removeprefix(f"{source}: ")
    for line in lines:
        stripped = re.sub(r"^\[[^\]]*\]\s*", "", line)  # "[mov,mp4,... @ 0x55d...] " prefixes
        if stripped:
            return stripped
    return ""


def _looks_like_mp4(path: Path) -> bool:
    """An ISO-BMFF file starts with a box header whose type is ftyp (or a top-level box like mdat)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return len(head) >= 8 and head[4:8] in {b"ftyp", b"mdat", b"moov", b"free", b"wide", b"skip"}


def _rotation(stream: dict[str, Any]) -> int:
    """Display rotation in degrees (0..359) from the display matrix, or the old `rotate` tag."""
    angle: float | None = None
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            angle = _float(side.get("rotation"))
            break
    if angle is None:
        angle = _float((stream.get("tags") or {}).get("rotate"))
    return round(angle or 0) % 360


def _fraction(value: Any) -> Fraction | None:
    try:
        num, _, den = str(value).partition("/")
        result = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return result if result > 0 else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result else None  # NaN is no duration
