"""The encode stage's media work: source -> verified proxy (and optionally master). No database, no S3.

The ffmpeg command is exactly `heaters.media.ffmpeg.proxy_args(...)` / `master_args(...)`: progress comes from
the `-progress pipe:2` records those builders already ask for (a dozen short lines twice a second), parsed
by `ProgressParser` on run_tool's stderr reader thread, so a benchmark running the same argv by hand
measures the same work. `proxy_command` / `master_command` return that argv for such a benchmark.

Why the proxy is verified after ffmpeg exits 0: ffmpeg stops quietly at the end of the readable data. A
faststart mp4 that was cut short still has its whole index (moov) up front, so ffprobe reports the full
duration and frame count, yet only the frames actually present are decoded and ffmpeg exits 0 with half a
proxy. Comparing the proxy's duration with the source's catches that (and any other silent truncation)
before a truncated proxy is cut into clips. The proxy is written under a temporary name and renamed only
once verified, so a file at the final path is always a good one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from heaters.errors import PermanentError, TransientError
from heaters.media.ffmpeg import (
    PROXY_MAX_LONG_SIDE,
    PROXY_MAX_SHORT_SIDE,
    ProgressParser,
    master_args,
    proxy_args,
    proxy_fps,
)
from heaters.media.probe import FFPROBE, MediaInfo, UnsupportedMedia, probe, useful_line
from heaters.media.tools import MediaToolError, MediaToolTimeout, run_tool
from heaters.videos.download import ProgressThrottle

PROXY_NAME = "proxy.mp4"
MASTER_NAME = "master.mp4"
PROBE_TIMEOUT = 120.0  # ffprobe of a local file takes well under a second; this is the ceiling per probe
DURATION_TOLERANCE_SECONDS = 0.5
DURATION_TOLERANCE_FRACTION = 0.02
_RESOURCE_TROUBLE = ("No space left on device", "Cannot allocate memory", "Disk quota exceeded")

ProgressCallback = Callable[[float], None]


class EncodeResourceError(TransientError):
    """The machine ran out of disk or memory while encoding: not the video's fault, try again later."""


class ProxyContractError(PermanentError):
    """The proxy ffmpeg produced breaks the proxy rules (size limits, even dimensions, rate): a bug here."""


@dataclass(frozen=True)
class EncodedProxy:
    """A verified all-intra CFR proxy, what ffprobe says about it, and about the source it came from."""

    path: Path
    info: MediaInfo
    source_info: MediaInfo


@dataclass(frozen=True)
class EncodedMaster:
    """A full-size archival encode checked to cover the whole source."""

    path: Path
    info: MediaInfo


def proxy_command(
    source: str | os.PathLike[str], dst: str | os.PathLike[str], source_info: MediaInfo, *, crf: int
) -> list[str]:
    """The exact ffmpeg argv `encode_proxy` runs for this source (for benchmarks and debugging)."""
    return proxy_args(source, dst, fps=proxy_fps(source_info.fps), crf=crf)


def master_command(source: str | os.PathLike[str], dst: str | os.PathLike[str], *, crf: int) -> list[str]:
    """The exact ffmpeg argv `encode_master` runs."""
    return master_args(source, dst, crf=crf)


def encode_proxy(
    source: Path, work_dir: Path, *, crf: int, timeout: float, on_progress: ProgressCallback | None = None
) -> EncodedProxy:
    """Probe `source`, encode `work_dir/proxy.mp4`, verify it; `timeout` bounds the whole call.

    `on_progress` gets a rising percent, at most once a second and once per point, and always the final 100.
    Raises UnsupportedMedia for input that is not a usable (or complete) video, MediaToolTimeout when the
    limit runs out, EncodeResourceError for a full disk.
    """
    deadline = _Deadline(timeout)
    source_info = probe(source, timeout=deadline.probe())
    fps = proxy_fps(source_info.fps)
    final = work_dir / PROXY_NAME
    partial = work_dir / (PROXY_NAME + ".partial")
    work_dir.mkdir(parents=True, exist_ok=True)
    expected_frames = max(1, round(Fraction(source_info.duration_seconds) * fps))
    _run_encode(
        proxy_args(source, partial, fps=fps, crf=crf),
        partial,
        deadline,
        ProgressParser(total_frames=expected_frames, on_progress=ProgressThrottle(on_progress)),
    )
    try:
        info = probe(partial, timeout=deadline.probe())
        whole = container_seconds(partial, timeout=deadline.probe())
        check_complete(source_info, info, output_container_seconds=whole)
        check_proxy(info, fps)
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, final)
    return EncodedProxy(final, info, source_info)


# The master shares a host's cores with the proxies and scans reviewers wait for: it takes what they leave.
MASTER_NICENESS = 19


def encode_master(
    source: Path, work_dir: Path, *, crf: int, timeout: float, on_progress: ProgressCallback | None = None
) -> EncodedMaster:
    """Archival full-size encode of `source` into `work_dir/master.mp4`, checked complete like the proxy."""
    deadline = _Deadline(timeout)
    source_info = probe(source, timeout=deadline.probe())
    final = work_dir / MASTER_NAME
    partial = work_dir / (MASTER_NAME + ".partial")
    work_dir.mkdir(parents=True, exist_ok=True)
    _run_encode(
        master_args(source, partial, crf=crf),
        partial,
        deadline,
        ProgressParser(total_seconds=source_info.duration_seconds, on_progress=ProgressThrottle(on_progress)),
        niceness=MASTER_NICENESS,
    )
    try:
        info = probe(partial, timeout=deadline.probe())
        whole = container_seconds(partial, timeout=deadline.probe())
        check_complete(source_info, info, output_container_seconds=whole)
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, final)
    return EncodedMaster(final, info)


def check_complete(source: MediaInfo, output: MediaInfo, *, output_container_seconds: float | None = None) -> None:
    """The output must cover the source's duration within max(0.5 s, 2 %), else the source is incomplete.

    The source's duration is its video stream's when the container records one (mp4), else the container's
    (mkv/webm), which is the longest stream; so the output counts as covering it if either its video stream
    or its whole container (`output_container_seconds`) does. Only a shortfall is an error: a proxy may be
    a little longer (CFR conversion repeats the first frame when a source's video starts after its audio).
    """
    check_covers(source.duration_seconds, max(output.duration_seconds, output_container_seconds or 0.0))


def check_covers(expected: float, covered: float) -> None:
    """`covered` seconds of output for a source of `expected` seconds: short by more than the tolerance is
    an incomplete source."""
    tolerance = max(DURATION_TOLERANCE_SECONDS, DURATION_TOLERANCE_FRACTION * expected)
    if expected - covered > tolerance:
        raise UnsupportedMedia(
            f"The file is incomplete: only {covered:.1f} of {expected:.1f} seconds could be "
            "decoded. The upload or download was probably cut short; supply the complete file again.",
            reason="truncated",
        )


def container_seconds(path: str | os.PathLike[str], *, timeout: float) -> float | None:
    """The container's duration (the longest stream), or None when ffprobe has none to give."""
    result = run_tool(
        [FFPROBE, "-v", "error", "-hide_banner", "-of", "json", "-show_entries", "format=duration", os.fspath(path)],
        timeout=timeout,
    )
    try:
        return float(json.loads(result.stdout_text or "{}").get("format", {}).get("duration"))
    except (TypeError, ValueError):
        return None


def check_proxy(info: MediaInfo, fps: Fraction, *, min_frames: int = 2) -> None:
    """What every later stage relies on: >= 2 frames, even size within 1280x720 (either way round), the rate.

    A chunk (`min_frames=1`) may be a single frame: the last one of a video."""
    long_side, short_side = max(info.width, info.height), min(info.width, info.height)
    problems = []
    if info.frame_count < min_frames:
        problems.append(f"{info.frame_count} frames")
    if info.width % 2 or info.height % 2:
        problems.append(f"odd size {info.width}x{info.height}")
    if long_side > PROXY_MAX_LONG_SIDE or short_side > PROXY_MAX_SHORT_SIDE:
        problems.append(f"size {info.width}x{info.height} above {PROXY_MAX_LONG_SIDE}x{PROXY_MAX_SHORT_SIDE}")
    if info.fps != fps:
        problems.append(f"{info.fps} fps instead of {fps}")
    if problems:
        raise ProxyContractError("The proxy does not meet the proxy rules: " + ", ".join(problems))


def _run_encode(
    args: list[str],
    partial: Path,
    deadline: _Deadline,
    parser: ProgressParser,
    *,
    niceness: int = 0,
    on_stdout: Callable[[bytes], None] | None = None,
) -> None:
    try:
        run_tool(args, timeout=deadline.remaining(), on_stderr_line=parser, niceness=niceness, on_stdout=on_stdout)
    except MediaToolTimeout:
        _remove(partial)
        raise
    except MediaToolError as exc:
        _remove(partial)
        if any(trouble in exc.stderr_tail for trouble in _RESOURCE_TROUBLE):
            raise EncodeResourceError(f"Encoding stopped for lack of disk space or memory: {exc}") from exc
        detail = useful_line(exc.stderr_tail, args[args.index("-i") + 1]) or "no details given"
        raise UnsupportedMedia(f"FFmpeg could not convert this video: {detail}", reason="encode_failed") from exc
    if parser.on_progress is not None:
        parser.on_progress(100.0)  # ffmpeg's last block says progress=end; this covers a run without one


class _Deadline:
    """One wall-clock budget shared by the probes and the encode of a call."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.end = time.monotonic() + timeout

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise MediaToolTimeout(["ffmpeg"], self.timeout, "")
        return left

    def probe(self) -> float:
        return min(PROBE_TIMEOUT, self.remaining())


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
