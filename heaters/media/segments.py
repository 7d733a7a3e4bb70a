"""Cutting one segment out of the all-intra proxy by stream copy, checked: shared by temp clips and export."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from heaters.errors import PermanentError
from heaters.media.ffmpeg import ProgressParser, chunked_segment_args, stream_copy_args
from heaters.media.tools import run_tool


def copy_segment(
    source: str | Path,
    dst: Path,
    *,
    start_frame: int,
    end_frame: int,
    fps: Fraction,
    frame_count: int | None,
    timeout: float,
    what: str = "The cut",
) -> int:
    """Frames [start_frame, end_frame) into `dst`; the count ffmpeg reports must be the segment's length.

    The check reads ffmpeg's own `-progress` report: a second process (ffprobe) costs as much as the copy.
    """
    expected = end_frame - start_frame
    args = stream_copy_args(
        source, dst, start_frame=start_frame, end_frame=end_frame, fps=fps, frame_count=frame_count, progress=True
    )
    report = ProgressParser(total_frames=expected)
    run_tool(args, timeout=timeout, on_stderr_line=report)
    frames = report.frames
    if frames != expected or not dst.is_file() or dst.stat().st_size == 0:
        raise PermanentError(f"{what} has {frames} frames instead of {expected}.")
    return expected


def copy_chunked_segment(
    concat_list: Path,
    audio_source: str | None,
    dst: Path,
    *,
    offset_frames: int,
    start_frame: int,
    end_frame: int,
    fps: Fraction,
    timeout: float,
    what: str = "The cut",
) -> int:
    """Frames [start_frame, end_frame) from chunk files listed in `concat_list`, checked like `copy_segment`."""
    expected = end_frame - start_frame
    args = chunked_segment_args(
        concat_list,
        audio_source,
        dst,
        offset_frames=offset_frames,
        start_frame=start_frame,
        end_frame=end_frame,
        fps=fps,
    )
    report = ProgressParser(total_frames=expected)
    run_tool(args, timeout=timeout, on_stderr_line=report)
    frames = report.frames
    if frames != expected or not dst.is_file() or dst.stat().st_size == 0:
        raise PermanentError(f"{what} has {frames} frames instead of {expected}.")
    return expected
