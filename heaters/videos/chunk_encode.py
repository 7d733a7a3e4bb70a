"""A chunked proxy's media work: encode and score one chunk, join the chunks. No database, no S3.

A chunk job reads only its part of the original (ffmpeg seeks over the signed URL with HTTP ranges) and
writes two things from one decode: the chunk (video only, all-intra, exactly the proxy's settings) and a
stream of small raw frames on stdout that `FrameScorer` turns into scene scores as they arrive, so the
chunk is never decoded a second time for detection (docs/benchmarks.md compares the two).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from heaters.errors import PermanentError
from heaters.media.ffmpeg import ProgressParser, chunk_args, join_args, tail_decode_args
from heaters.media.probe import MediaInfo, UnsupportedMedia, probe
from heaters.media.scene_scores import FrameScorer
from heaters.media.scenes import DetectorName
from heaters.media.tools import run_tool
from heaters.videos.encode import (
    EncodedProxy,
    ProxyContractError,
    _Deadline,
    _remove,
    _run_encode,
    check_complete,
    check_proxy,
    container_seconds,
)

CHUNK_NAME = "chunk.mp4"


@dataclass(frozen=True)
class EncodedChunk:
    """A verified chunk (None when the source ended before it) and the scene score of each of its frames."""

    path: Path | None
    frames: int
    scores: list[float]
    info: MediaInfo | None


class _FrameReader:
    """Cuts stdout into frames and scores each; the first is only the reference when the chunk has one."""

    def __init__(self, width: int, height: int, scorer: FrameScorer, *, reference_first: bool) -> None:
        self.width, self.height = width, height
        self.size = width * height * 3
        self.scorer = scorer
        self.reference_pending = reference_first
        self.buffer = bytearray()
        self.scores: list[float] = []

    def __call__(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= self.size:
            frame = np.frombuffer(bytes(self.buffer[: self.size]), dtype=np.uint8).reshape(self.height, self.width, 3)
            del self.buffer[: self.size]
            if self.reference_pending:
                self.reference_pending = False
                self.scorer.prime(frame)
            else:
                self.scores.append(self.scorer.score(frame))


def encode_chunk(
    source: str,
    work_dir: Path,
    *,
    fps: Fraction,
    start_frame: int,
    end_frame: int | None,
    analysis_size: tuple[int, int],
    detector: DetectorName,
    crf: int,
    timeout: float,
    on_progress: Callable[[float], None] | None = None,
) -> EncodedChunk:
    """Encode proxy frames [start_frame, end_frame) of `source` into `work_dir/chunk.mp4`, scored, verified.

    Fewer frames than planned is not an error here (the source may end inside the chunk); a count that
    disagrees between the encoder, the scorer and ffprobe is.
    """
    deadline = _Deadline(timeout)
    work_dir.mkdir(parents=True, exist_ok=True)
    final = work_dir / CHUNK_NAME
    partial = work_dir / (CHUNK_NAME + ".partial")
    width, height = analysis_size
    reader = _FrameReader(width, height, FrameScorer(detector), reference_first=start_frame > 0)
    planned = (end_frame - start_frame) if end_frame is not None else None
    args = chunk_args(
        source,
        partial,
        fps=fps,
        start_frame=start_frame,
        end_frame=end_frame,
        analysis_size=analysis_size,
        crf=crf,
    )
    parser = ProgressParser(total_frames=planned, on_progress=on_progress)
    _run_encode(args, partial, deadline, parser, on_stdout=reader)
    written = parser.frames or 0
    if reader.buffer:
        _remove(partial)
        raise PermanentError(f"The scene scan of frames from {start_frame} ended inside a frame; try again.")
    if written == 0:
        _remove(partial)
        return EncodedChunk(None, 0, [], None)
    try:
        info = probe(partial, timeout=deadline.probe(), min_frames=1)
        check_proxy(info, fps, min_frames=1)
        if info.frame_count != written or len(reader.scores) != written:
            raise ProxyContractError(
                f"The chunk from frame {start_frame} has {info.frame_count} frames, the encoder wrote {written} "
                f"and the scan saw {len(reader.scores)}."
            )
        if planned is not None and written > planned:
            raise ProxyContractError(f"The chunk from frame {start_frame} has {written} frames, not {planned}.")
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, final)
    return EncodedChunk(final, written, reader.scores, info)


TAIL_SECONDS = 2.0


def check_tail(source: str, info: MediaInfo, *, timeout: float) -> None:
    """Decode the source's last seconds: a file cut short (a faststart mp4 keeps its whole index, so ffprobe
    sees its full length) fails here, before any chunk is encoded or any clip is shown."""
    start = max(0.0, info.duration_seconds - TAIL_SECONDS)
    parser = ProgressParser()
    run_tool(tail_decode_args(source, start_seconds=start), timeout=timeout, on_stderr_line=parser)
    if not parser.frames:
        raise UnsupportedMedia(
            f"The file is incomplete: its last seconds (from {start:.1f} of {info.duration_seconds:.1f} s) "
            "could not be decoded. The upload or download was probably cut short; supply the complete file again.",
            reason="truncated",
        )


def write_concat_list(paths: Sequence[str | os.PathLike[str]], list_path: Path, *, inpoint: str | None = None) -> Path:
    """An ffconcat file naming each part (local paths or signed URLs), quoted as the demuxer expects.

    `inpoint` starts the first part there (seconds, in its own timeline): the concat demuxer cannot seek
    across parts whose durations it does not know, but it opens a part at its in point, which for all-intra
    chunks is the frame itself, and starts the output's timestamps there."""
    lines = ["ffconcat version 1.0"]
    for number, path in enumerate(paths):
        quoted = os.fspath(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        if number == 0 and inpoint is not None:
            lines.append(f"inpoint {inpoint}")
    list_path.write_text("\n".join(lines) + "\n")
    return list_path


def join_chunks(
    chunks: Sequence[Path],
    audio_source: str,
    work_dir: Path,
    *,
    fps: Fraction,
    expected_frames: int,
    source_info: MediaInfo,
    timeout: float,
) -> EncodedProxy:
    """The proxy: the chunks by stream copy plus the source's audio encoded once, verified as a single pass's."""
    deadline = _Deadline(timeout)
    work_dir.mkdir(parents=True, exist_ok=True)
    final = work_dir / "proxy.mp4"
    partial = work_dir / "proxy.mp4.partial"
    listing = write_concat_list(chunks, work_dir / "chunks.ffconcat")
    _run_encode(
        join_args(listing, audio_source, partial),
        partial,
        deadline,
        ProgressParser(total_frames=expected_frames),
    )
    try:
        info = probe(partial, timeout=deadline.probe())
        whole = container_seconds(partial, timeout=deadline.probe())
        check_complete(source_info, info, output_container_seconds=whole)
        check_proxy(info, fps)
        if info.frame_count != expected_frames:
            raise ProxyContractError(
                f"The joined proxy has {info.frame_count} frames, but its chunks have {expected_frames}."
            )
    except BaseException:
        _remove(partial)
        raise
    os.replace(partial, final)
    return EncodedProxy(final, info, source_info)
