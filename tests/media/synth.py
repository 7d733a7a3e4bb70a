"""Synthetic test media made with ffmpeg's lavfi sources: scenes with hard cuts at known frames, odd and
large frame sizes, a VFR file, and the broken inputs users really upload.

Each scene is a different, moving pattern, so adjacent scenes differ a lot (a hard cut) while frames
inside one scene differ little: a detector that misses or shifts a cut is wrong, not unlucky.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate
from pathlib import Path

from heaters.media.tools import run_tool

TIMEOUT = 60.0

# Sources that move a little every frame but never jump; the palette is cycled, neighbours always differ.
SCENE_SOURCES: tuple[str, ...] = (
    "testsrc2=s={size}:r={rate}",
    "mandelbrot=s={size}:r={rate}:start_scale=1.5:end_scale=0.9",
    "gradients=s={size}:r={rate}:c0=0xff3010:c1=0x1030ff:speed=0.03:seed=1",
    "colorspectrum=s={size}:r={rate},scroll=h=0.004",
    "color=c=0xd0a020:s={size}:r={rate},noise=alls=6:allf=t",
    "pal100bars=s={size}:r={rate},scroll=v=0.005",
    "testsrc=s={size}:r={rate},lutyuv=y=val*0.4",
)


@dataclass(frozen=True)
class SynthVideo:
    """A generated file and the truth about it."""

    path: Path
    fps: Fraction
    frame_count: int
    width: int
    height: int
    cuts: tuple[int, ...] = ()
    has_audio: bool = False


def _ffmpeg(*args: str) -> None:
    run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], timeout=TIMEOUT)


def _source_encode(has_audio: bool) -> list[str]:
    """A typical camera/download file: long GOP with B-frames, so the proxy really has to re-encode."""
    args = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "48", "-bf", "2", "-pix_fmt", "yuv420p"]
    if has_audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    return args


def make_cut_video(
    path: Path, *, fps: Fraction, scene_frames: Sequence[int], width: int = 160, height: int = 90, audio: bool = True
) -> SynthVideo:
    """Scenes of exactly `scene_frames` frames each, concatenated with hard cuts between them."""
    size, rate = f"{width}x{height}", f"{fps.numerator}/{fps.denominator}"
    chains, labels = [], []
    for index, frames in enumerate(scene_frames):
        source = SCENE_SOURCES[index % len(SCENE_SOURCES)].format(size=size, rate=rate)
        chains.append(f"{source},format=yuv420p,trim=end_frame={frames},setpts=PTS-STARTPTS[s{index}]")
        labels.append(f"[s{index}]")
    total = sum(scene_frames)
    graph = ";".join(chains) + f";{''.join(labels)}concat=n={len(labels)}:v=1:a=0,format=yuv420p[v]"
    args = ["-filter_complex", graph, "-map", "[v]"]
    if audio:
        seconds = float(Fraction(total) / fps)
        args = ["-f", "lavfi", "-i", f"sine=f=440:r=48000:d={seconds:.6f}", *args, "-map", "0:a"]
    _ffmpeg(*args, *_source_encode(audio), str(path))
    cuts = tuple(accumulate(scene_frames))[:-1]
    return SynthVideo(path, fps, total, width, height, cuts, audio)


def make_pattern_video(
    path: Path, *, fps: Fraction, frames: int, width: int, height: int, audio: bool = False
) -> SynthVideo:
    """One moving testsrc2 scene, for size/rate cases. Odd sizes are coded 4:4:4 (4:2:0 cannot be odd)."""
    rate = f"{fps.numerator}/{fps.denominator}"
    odd = bool(width % 2 or height % 2)
    source = f"testsrc2=s={width + width % 2}x{height + height % 2}:r={rate}"
    if odd:  # testsrc2 is 4:2:0 and rounds odd sizes down: draw one larger, crop in 4:4:4
        source += f",format=yuv444p,crop={width}:{height}"
    args = ["-f", "lavfi", "-i", source]
    if audio:
        seconds = float(Fraction(frames) / fps)
        args += ["-f", "lavfi", "-i", f"sine=f=220:r=48000:d={seconds:.6f}", "-map", "0:v", "-map", "1:a"]
    encode = _source_encode(audio)
    if odd:
        encode[encode.index("yuv420p")] = "yuv444p"
    _ffmpeg(*args, "-frames:v", str(frames), *encode, str(path))
    return SynthVideo(path, fps, frames, width, height, (), audio)


def make_vfr_video(path: Path, *, frames: int = 60) -> Path:
    """Variable frame rate: frame durations alternate 1/30 s and 1/15 s (average 20 fps), as phones do."""
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x90:r=30",
        "-vf",
        "setpts='(N+floor(N/2))/(30*TB)'",
        "-fps_mode",
        "vfr",
        "-frames:v",
        str(frames),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-video_track_timescale",
        "90000",
        str(path),
    )
    return path


def make_rotated_video(src: Path, path: Path) -> Path:
    """A landscape-coded file with 90° display rotation metadata, like a phone's portrait recording."""
    _ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    return path


def make_zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def make_text_as_mp4(path: Path) -> Path:
    path.write_text("This is a shopping list, not a video.\nmilk\neggs\n" * 20)
    return path


def make_truncated_mp4(src: Path, path: Path) -> Path:
    """The first half of an mp4 whose index (moov) sits at the end: what a cut-short upload looks like."""
    moov_last = path.with_suffix(".moovlast.mp4")
    _ffmpeg("-i", str(src), "-c", "copy", str(moov_last))  # no +faststart: moov is written last
    data = moov_last.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    moov_last.unlink()
    return path


def make_audio_only(path: Path) -> Path:
    _ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=48000:d=2", "-c:a", "aac", str(path))
    return path


def make_audio_with_cover(path: Path, cover_png: Path) -> Path:
    """Music file with embedded cover art: the picture is a video stream but not a video."""
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=2",
        "-i",
        str(cover_png),
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:a",
        "libmp3lame",
        "-c:v",
        "png",
        "-disposition:v:0",
        "attached_pic",
        str(path),
    )
    return path


def make_still_png(path: Path) -> Path:
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x90", "-frames:v", "1", str(path))
    return path


def make_one_frame_video(path: Path) -> Path:
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=160x90:r=25",
        "-frames:v",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def copy_as(src: Path, path: Path) -> Path:
    shutil.copyfile(src, path)
    return path
