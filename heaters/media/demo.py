"""Generated demo videos: varied moving patterns with hard cuts at known frames.

Why it is in the product: `heaters demo` and the first `heaters up` (`make run`) ingest one, so a new
install has clips to review within a minute, and no real footage can be downloaded on the build machines.
The benchmarks (bench/benchmark_video.py) build their longer sources from the same pieces
(`demo_video_args` with `first_scene` and `audio=False`, `tone_filter_graph`). What makes them useful
stand-ins for a download:
* every scene is a different lavfi pattern that MOVES (zooms, scrolls, evolves), so the proxy encoder and
  the scene detector see real work, while frames inside one scene never jump;
* neighbouring scenes differ in colour and structure, so each cut is a clear hard cut: AdaptiveDetector on
  the proxy finds exactly `cut_frames` (tests pin this), which makes them ground truth, not a guess;
* scene lengths are irregular (seeded, so the same call gives the same file) and at least one second;
* the file is what yt-dlp hands over: long-GOP H.264 (B-frames, keyframe every 2 s) + AAC in a faststart
  mp4; each scene has its own tone, so a reviewer hears the cut too.

Expensive sources (mandelbrot, life, sierpinski) are drawn at a quarter or half of the size and scaled up.
The demo is one ffmpeg run; every ffmpeg run has a wall-clock limit.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate
from pathlib import Path

from heaters.media.tools import run_tool

FFMPEG = "ffmpeg"
AUDIO_RATE = 48000
MIN_SCENE_SECONDS = 1  # well above the detectors' 15-frame minimum scene length at any sane rate

COMMON_ARGS = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y"]

# One scene = a filter chain from lavfi sources to a frame of the target size. Arguments: width, height, rate
# ("30/1"), seed (unique within a graph, so it also names the scene's inner pads). Consecutive entries
# differ in colour and structure, and the list is cycled, so neighbouring scenes are never the same kind.
# Motion is smooth: what changes from frame to frame inside a scene stays far below what changes at a cut
# (measured as PySceneDetect does, mean HSV difference at 256 px: at most ~6 inside a scene, at least ~50
# between neighbouring recipes, against AdaptiveDetector's floor of 15 and ratio of 3), so an
# AdaptiveDetector cut is never missed or invented. Busy automata (life, cellauto) therefore advance
# slowly or live in a window over a calm background.
SceneRecipe = Callable[[int, int, str, int], str]


def _div(value: int, by: int) -> int:
    return max(2, value // by // 2 * 2)


def _window(background: str, foreground: str, w: int, h: int, s: int, *, x: str, y: str) -> str:
    """`foreground` (a chain) overlaid on `background` at an expression position; pads named by seed."""
    return f"{background}[bg{s}];{foreground}[fg{s}];[bg{s}][fg{s}]overlay=x='{x}':y='{y}':shortest=1"


SCENES: tuple[tuple[str, SceneRecipe], ...] = (
    ("testsrc2", lambda w, h, r, s: f"testsrc2=s={w}x{h}:r={r}"),
    (
        "mandelbrot",
        lambda w, h, r, s: (
            f"mandelbrot=s={_div(w, 4)}x{_div(h, 4)}:r={r}:start_scale={2.0 + s % 3 * 0.5}:end_scale=0.3"
            f":end_pts=2000:start_x=-0.743643887037151:start_y=0.131825904205330,scale={w}:{h}:flags=bilinear"
        ),
    ),
    (
        "cellauto",
        lambda w, h, r, s: (
            f"cellauto=s={_div(w, 8)}x{_div(h, 8)}:r={r}:rule={(30, 110, 90, 150)[s % 4]}:seed={s}:scroll=0"
            f":start_full=1,scale={w}:{h}:flags=neighbor,format=yuv420p,"
            f"lutyuv=y=val*0.7+40:u={70 + s % 4 * 8}:v={180 - s % 3 * 12}"
        ),
    ),
    (
        "gradients",
        lambda w, h, r, s: (
            f"gradients=s={_div(w, 2)}x{_div(h, 2)}:r={r}:speed=0.01:n={3 + s % 4}:seed={s}"
            f":c0=0xff4010:c1=0x1040ff:c2=0x20e060:c3=0xffe020:c4=0xa020c0:c5=0x10d0d0,scale={w}:{h}"
        ),
    ),
    ("smptehdbars", lambda w, h, r, s: f"smptehdbars=s={w}x{h}:r={r},scroll=h=0.003:v=0.001"),
    (
        "life",
        lambda w, h, r, s: _window(
            f"color=c=0x5a1838:s={w}x{h}:r={r}",
            f"life=s={_div(w, 16)}x{_div(h, 16)}:r=5:mold=8:ratio=0.3:seed={s}:life_color=0x40ff90"
            f":death_color=0x102040:mold_color=0x204080,framerate=fps={r},scale={_div(w, 2)}:{_div(h, 2)}",
            w,
            h,
            s,
            x=f"{w // 4}",
            y=f"{h // 4}",
        ),
    ),
    (
        "boxes",
        lambda w, h, r, s: _window(
            f"color=c=0xe0e0d0:s={w}x{h}:r={r}",
            f"color=c=0xd02020:s={_div(w, 5)}x{_div(h, 3)}:r={r}",
            w,
            h,
            s,
            x=f"mod(t*{w // 6},{w})",
            y=f"{h // 5}+{h // 8}*sin(t)",
        ),
    ),
    ("colorspectrum", lambda w, h, r, s: f"colorspectrum=s={w}x{h}:r={r},scroll=h=0.003"),
    (
        "sierpinski",
        lambda w, h, r, s: _window(
            f"color=c=0x20305a:s={w}x{h}:r={r}",
            f"sierpinski=s={_div(w, 4)}x{_div(h, 4)}:r={r}:seed={s}:jump=1:type={('carpet', 'triangle')[s % 2]},"
            f"format=yuv420p,lutyuv=u=170:v=100,scale={_div(w, 2)}:{_div(h, 2)}:flags=neighbor",
            w,
            h,
            s,
            x=f"{w // 4}",
            y=f"{h // 4}",
        ),
    ),
    ("testsrc-hue", lambda w, h, r, s: f"testsrc=s={w}x{h}:r={r},hue=h={(140, 220, 60)[s % 3]}:s=1.3,scroll=v=0.002"),
    ("rgbtestsrc", lambda w, h, r, s: f"rgbtestsrc=s={w}x{h}:r={r},scroll=h=-0.004:v=0.002"),
    (
        "grain",
        lambda w, h, r, s: _window(
            f"color=c=0x{(0xD0A020, 0x2080C0, 0x40A040)[s % 3]:06x}:s={w}x{h}:r={r},noise=alls=30:allf=u",
            f"testsrc2=s={_div(w, 4)}x{_div(h, 4)}:r={r}",
            w,
            h,
            s,
            x=f"mod(t*{w // 8},{w})",
            y=f"{h // 2}",
        ),
    ),
    ("yuvtestsrc", lambda w, h, r, s: f"yuvtestsrc=s={w}x{h}:r={r},scroll=v=-0.004"),
    ("pal100bars", lambda w, h, r, s: f"pal100bars=s={w}x{h}:r={r},scroll=h=0.004,negate"),
)


@dataclass(frozen=True)
class DemoVideo:
    """A generated file and the truth about it: cut frames are the first frames of scenes 2..n."""

    path: Path
    cut_frames: list[int]
    frame_count: int
    fps: Fraction = Fraction(30)
    width: int = 0
    height: int = 0
    elapsed_seconds: float = 0.0


def scene_lengths(frame_count: int, scenes: int, *, min_frames: int, seed: int = 7) -> list[int]:
    """Irregular scene lengths (seeded weights 0.5..1.5) summing to `frame_count`, each >= min_frames."""
    if scenes < 1:
        raise ValueError("need at least one scene")
    if frame_count < scenes * min_frames:
        raise ValueError(f"{frame_count} frames cannot hold {scenes} scenes of at least {min_frames} frames")
    rng = random.Random(seed)
    weights = [rng.uniform(0.5, 1.5) for _ in range(scenes)]
    spare = frame_count - scenes * min_frames
    total = sum(weights)
    lengths = [min_frames + int(spare * w / total) for w in weights]
    for i in range(frame_count - sum(lengths)):  # rounding leftovers, spread from the front
        lengths[i % scenes] += 1
    return lengths


def cut_frames_for(lengths: list[int]) -> list[int]:
    """First frame of every scene but the first."""
    return list(accumulate(lengths))[:-1]


def demo_filter_graph(
    lengths: list[int],
    *,
    width: int,
    height: int,
    fps: Fraction,
    first_scene: int = 0,
    seed: int = 7,
    audio: bool = True,
) -> str:
    """The filter_complex drawing the scenes back to back (output [v]) with one tone per scene ([a]).

    `first_scene` continues the recipe cycle where an earlier part stopped, so parts joined later still
    have different neighbours at their seams.
    """
    rate = f"{fps.numerator}/{fps.denominator}"
    chains, pads = [], []
    for offset, frames in enumerate(lengths):
        index = first_scene + offset
        _, recipe = SCENES[index % len(SCENES)]
        source = recipe(width, height, rate, seed + index)
        chains.append(f"{source},format=yuv420p,setsar=1,trim=end_frame={frames},setpts=PTS-STARTPTS[v{offset}]")
        pads.append(f"[v{offset}]")
    graph = ";".join(chains) + f";{''.join(pads)}concat=n={len(lengths)}:v=1:a=0[v]"
    if audio:
        graph += ";" + tone_filter_graph(lengths, fps=fps, first_scene=first_scene)
    return graph


def tone_filter_graph(lengths: list[int], *, fps: Fraction, first_scene: int = 0) -> str:
    """One beeping tone per scene, each exactly as long as its scene (sample-exact), output [a]."""
    chains, pads = [], []
    for offset, frames in enumerate(lengths):
        index = first_scene + offset
        samples = round(Fraction(frames) / fps * AUDIO_RATE)
        tone = 220.0 * 2 ** ((index * 5 % 24) / 12)  # fourths apart over two octaves: neighbours differ
        chains.append(
            f"sine=f={tone:.2f}:r={AUDIO_RATE}:beep_factor=2,volume=0.5,"
            f"atrim=end_sample={samples},asetpts=PTS-STARTPTS[a{offset}]"
        )
        pads.append(f"[a{offset}]")
    return ";".join(chains) + f";{''.join(pads)}concat=n={len(lengths)}:v=0:a=1[a]"


def source_encode_args(
    *, fps: Fraction, crf: int, preset: str, audio: bool = True, audio_bitrate: str = "128k"
) -> list[str]:
    """Like a typical download: H.264 High, keyframe every 2 s with B-frames, AAC, faststart mp4."""
    gop = str(max(1, round(fps * 2)))
    video = ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p", "-g", gop, "-bf", "2"]
    sound = ["-c:a", "aac", "-b:a", audio_bitrate, "-ar", str(AUDIO_RATE)] if audio else ["-an"]
    return [*video, *sound, "-movflags", "+faststart", "-f", "mp4"]


def demo_video_args(
    path: str | os.PathLike[str],
    lengths: list[int],
    *,
    width: int,
    height: int,
    fps: Fraction,
    crf: int,
    preset: str,
    first_scene: int = 0,
    seed: int = 7,
    audio: bool = True,
) -> list[str]:
    """The whole ffmpeg argv for one file of scenes (pure, so it can be inspected and rerun by hand)."""
    graph = demo_filter_graph(
        lengths, width=width, height=height, fps=fps, first_scene=first_scene, seed=seed, audio=audio
    )
    maps = ["-map", "[v]", "-map", "[a]"] if audio else ["-map", "[v]"]
    return [
        FFMPEG,
        *COMMON_ARGS,
        "-filter_complex",
        graph,
        *maps,
        *source_encode_args(fps=fps, crf=crf, preset=preset, audio=audio),
        os.fspath(path),
    ]


def check_request(seconds: int, cuts: int, size: tuple[int, int], fps: Fraction) -> None:
    width, height = size
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"size must be even and at least 16x16, got {width}x{height}")
    if fps <= 0 or seconds <= 0 or cuts < 0:
        raise ValueError("seconds and fps must be positive and cuts not negative")


def make_demo_video(
    path: Path,
    *,
    seconds: int = 60,
    cuts: int = 12,
    size: tuple[int, int] = (1280, 720),
    fps: int | Fraction = 30,
    timeout: float,
    crf: int = 23,
    preset: str = "ultrafast",
    seed: int = 7,
) -> DemoVideo:
    """A video of `cuts + 1` varied moving scenes with hard cuts at the returned frames, in one ffmpeg run."""
    rate = Fraction(fps)
    check_request(seconds, cuts, size, rate)
    frame_count = round(seconds * rate)
    min_frames = max(15, round(MIN_SCENE_SECONDS * rate))
    lengths = scene_lengths(frame_count, cuts + 1, min_frames=min_frames, seed=seed)
    started = time.monotonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    run_tool(
        demo_video_args(path, lengths, width=size[0], height=size[1], fps=rate, crf=crf, preset=preset, seed=seed),
        timeout=timeout,
    )
    return DemoVideo(path, cut_frames_for(lengths), frame_count, rate, size[0], size[1], time.monotonic() - started)
