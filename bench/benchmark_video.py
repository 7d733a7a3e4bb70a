"""The benchmarks' long source video (bench/ingest.py, bench/review.py), made from the demo's scenes.

The demo (heaters.media.demo) is one ffmpeg run. This renders video-only parts two at a time (lavfi filter
graphs are single-threaded), joins them with the concat demuxer without re-encoding and encodes the
soundtrack in that same join (see `join_parts_args` for why the parts carry no audio). Every ffmpeg run has
a wall-clock limit. Nothing shipped uses it, so it lives here rather than in the `heaters` package.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

from heaters.media.demo import (
    AUDIO_RATE,
    COMMON_ARGS,
    FFMPEG,
    MIN_SCENE_SECONDS,
    DemoVideo,
    check_request,
    cut_frames_for,
    demo_video_args,
    scene_lengths,
    tone_filter_graph,
)
from heaters.media.tools import run_tool


def join_parts_args(
    listing: str | os.PathLike[str],
    path: str | os.PathLike[str],
    lengths: list[int],
    *,
    fps: Fraction,
    audio_bitrate: str = "128k",
) -> list[str]:
    """Video parts joined by the concat demuxer (stream copy), with the whole soundtrack encoded in one go.

    Parts are video-only on purpose: an AAC track ends on a 1024-sample frame boundary, so joined parts
    with audio would drift by up to 21 ms per seam, and the proxy's CFR conversion would then duplicate
    frames and move every later cut.
    """
    return [
        FFMPEG,
        *COMMON_ARGS,
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        os.fspath(listing),
        "-filter_complex",
        tone_filter_graph(lengths, fps=fps),
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        audio_bitrate,
        "-ar",
        str(AUDIO_RATE),
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        os.fspath(path),
    ]


def make_benchmark_video(
    path: Path,
    *,
    seconds: int = 600,
    cuts: int = 40,
    size: tuple[int, int] = (1920, 1080),
    fps: int | Fraction = 30,
    timeout: float,
    crf: int = 23,
    preset: str = "veryfast",
    seed: int = 11,
    parallel: int = 2,
    scenes_per_part: int = 6,
) -> DemoVideo:
    """The benchmark source (default 10 min 1080p30, 40 hard cuts), generated in parts and joined losslessly.

    Parts are cut at scene boundaries (a part starts with a keyframe, so the joined file plays and decodes
    like one encode) and `parallel` of them run at once: lavfi sources and ffmpeg 5.1's filter graph are
    single-threaded, so two runs use two cores better than one. `timeout` bounds the whole call.
    """
    rate = Fraction(fps)
    check_request(seconds, cuts, size, rate)
    frame_count = round(seconds * rate)
    min_frames = max(15, round(MIN_SCENE_SECONDS * rate))
    lengths = scene_lengths(frame_count, cuts + 1, min_frames=min_frames, seed=seed)
    started = time.monotonic()
    deadline = started + timeout
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = [(i, lengths[i : i + scenes_per_part]) for i in range(0, len(lengths), max(1, scenes_per_part))]
    with tempfile.TemporaryDirectory(prefix="heaters_bench_", dir=path.parent) as tmp:
        parts = [Path(tmp) / f"part_{n:03d}.mp4" for n in range(len(groups))]

        def render(job: tuple[Path, tuple[int, list[int]]]) -> None:
            part, (first, group) = job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"benchmark video generation ran past its {timeout:g} s limit")
            run_tool(
                demo_video_args(
                    part,
                    group,
                    width=size[0],
                    height=size[1],
                    fps=rate,
                    crf=crf,
                    preset=preset,
                    first_scene=first,
                    seed=seed,
                    audio=False,
                ),
                timeout=remaining,
            )

        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            list(pool.map(render, zip(parts, groups, strict=True)))
        listing = Path(tmp) / "parts.txt"
        listing.write_text("".join(f"file '{p.name}'\n" for p in parts))
        remaining = max(1.0, deadline - time.monotonic())
        run_tool(join_parts_args(listing, path, lengths, fps=rate), timeout=remaining)
    return DemoVideo(path, cut_frames_for(lengths), frame_count, rate, size[0], size[1], time.monotonic() - started)
