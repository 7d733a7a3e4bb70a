"""The generated demo and benchmark videos keep their promise: AdaptiveDetector on the proxy finds exactly the
cut frames the generator reports, the file looks like a download (long-GOP H.264 + AAC), and the seams of a
benchmark video joined from parts do not shift a single frame."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from bench.benchmark_video import make_benchmark_video
from heaters.media import demo
from heaters.media.demo import DemoVideo, make_demo_video, scene_lengths
from heaters.media.ffmpeg import proxy_args, proxy_fps
from heaters.media.probe import probe
from heaters.media.scenes import detect_cuts
from heaters.media.tools import run_tool


def _cuts_after_proxy(video: DemoVideo, tmp_path: Path) -> list[int]:
    """What the pipeline would find: proxy encode, then scene detection on the proxy."""
    info = probe(video.path, timeout=30)
    proxy = tmp_path / f"{video.path.stem}.proxy.mp4"
    run_tool(proxy_args(video.path, proxy, fps=proxy_fps(info.fps)), timeout=300)
    proxy_info = probe(proxy, timeout=30)
    assert proxy_info.frame_count == video.frame_count
    found = detect_cuts(proxy, expected_frame_count=proxy_info.frame_count, fps=proxy_info.fps)
    return [cut.frame for cut in found]


def _keyframe_count(path: Path) -> int:
    out = run_tool(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
            "-show_entries",
            "frame=pts",
            "-of",
            "json",
            str(path),
        ],
        timeout=60,
    ).stdout_text
    return len(json.loads(out)["frames"])


# ---- pure ---------------------------------------------------------------------------------------------------


def test_scene_lengths_are_irregular_exact_and_deterministic() -> None:
    lengths = scene_lengths(1800, 13, min_frames=30)
    assert sum(lengths) == 1800 and len(lengths) == 13 and min(lengths) >= 30
    assert len(set(lengths)) >= 10  # irregular, not a fixed rhythm a detector could luck into
    assert lengths == scene_lengths(1800, 13, min_frames=30)
    assert lengths != scene_lengths(1800, 13, min_frames=30, seed=8)
    with pytest.raises(ValueError, match="cannot hold"):
        scene_lengths(100, 5, min_frames=30)


def test_neighbouring_scenes_are_never_the_same_recipe() -> None:
    graph = demo.demo_filter_graph([30] * 30, width=64, height=36, fps=Fraction(30))
    names = [name for name, _ in demo.SCENES]
    assert len(set(names)) == len(names) >= 13
    assert graph.count("concat=n=30:v=1:a=0[v]") == 1 and graph.count("concat=n=30:v=0:a=1[a]") == 1


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        make_demo_video(tmp_path / "x.mp4", size=(321, 180), timeout=10)
    with pytest.raises(ValueError, match="cannot hold"):
        make_demo_video(tmp_path / "x.mp4", seconds=2, cuts=4, timeout=10)


# ---- real ffmpeg ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [Fraction(30), Fraction(25), Fraction(30000, 1001)])
def test_small_demo_has_exactly_its_cuts_after_proxy_encode(fps: Fraction, tmp_path: Path) -> None:
    video = make_demo_video(tmp_path / "demo.mp4", seconds=12, cuts=4, size=(320, 180), fps=fps, timeout=60)
    assert len(video.cut_frames) == 4 and video.frame_count == round(12 * fps)
    info = probe(video.path, timeout=30)
    assert (info.width, info.height, info.fps, info.frame_count) == (320, 180, fps, video.frame_count)
    assert info.has_audio and info.video_codec == "h264"
    assert _cuts_after_proxy(video, tmp_path) == video.cut_frames


def test_demo_is_a_long_gop_source_like_a_download(tmp_path: Path) -> None:
    video = make_demo_video(tmp_path / "demo.mp4", seconds=8, cuts=2, size=(256, 144), timeout=60)
    keyframes = _keyframe_count(video.path)
    assert 2 <= keyframes <= 8, keyframes  # a keyframe every 2 s (x264 may add some at cuts), not all-intra
    data = video.path.read_bytes()[:4096]
    assert b"moov" in data  # faststart, as yt-dlp's merged mp4


def test_benchmark_video_joined_from_parts_keeps_every_cut_exact(tmp_path: Path) -> None:
    video = make_benchmark_video(
        tmp_path / "bench.mp4", seconds=20, cuts=8, size=(320, 180), timeout=120, scenes_per_part=2, preset="ultrafast"
    )
    info = probe(video.path, timeout=30)
    assert info.frame_count == video.frame_count == 600
    assert abs(info.duration_seconds - 20) < 0.05 and info.has_audio
    assert info.fps == Fraction(30) and not info.variable_frame_rate  # seams left no timestamp gaps
    assert _cuts_after_proxy(video, tmp_path) == video.cut_frames
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("heaters_bench_")]  # parts cleaned up


@pytest.mark.slow
def test_default_demo_minute_has_its_twelve_cuts(tmp_path: Path) -> None:
    video = make_demo_video(tmp_path / "demo.mp4", timeout=120)
    assert len(video.cut_frames) == 12 and video.frame_count == 1800
    assert (video.width, video.height) == (1280, 720)
    assert _cuts_after_proxy(video, tmp_path) == video.cut_frames
