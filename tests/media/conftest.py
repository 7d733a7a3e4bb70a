"""Session-scoped synthetic media, generated once into a temporary directory (each file on first use)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from heaters.media.ffmpeg import proxy_args
from heaters.media.tools import run_tool

from . import synth

# Scene lengths in frames: all above the detectors' 15-frame minimum, none equal, so a cut shifted by one
# scene length or by one frame shows up in the assertions. Cuts at 37, 66, 107, 140, 166, 211; 241 frames.
SCENES = (37, 29, 41, 33, 26, 45, 30)
RATES = {"25": Fraction(25), "30": Fraction(30), "29.97": Fraction(30000, 1001)}


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def cut_sources(media_dir: Path) -> dict[str, synth.SynthVideo]:
    """Long-GOP sources with hard cuts at known frames, at 25, 30 and 30000/1001 fps."""
    return {
        name: synth.make_cut_video(media_dir / f"cuts_{name}.mp4", fps=fps, scene_frames=SCENES)
        for name, fps in RATES.items()
    }


@pytest.fixture(scope="session")
def cut_proxies(cut_sources: dict[str, synth.SynthVideo], media_dir: Path) -> dict[str, synth.SynthVideo]:
    """The same videos after proxy_args: what scene detection and stream copy really read."""
    proxies = {}
    for name, source in cut_sources.items():
        path = media_dir / f"cuts_{name}.proxy.mp4"
        run_tool(proxy_args(source.path, path, fps=source.fps), timeout=120)
        proxies[name] = synth.SynthVideo(
            path, source.fps, source.frame_count, source.width, source.height, source.cuts, source.has_audio
        )
    return proxies


@pytest.fixture(scope="session")
def odd_inputs(media_dir: Path) -> dict[str, synth.SynthVideo | Path]:
    """Sources a proxy must survive: odd portrait, 60 fps, 4K, VFR, phone rotation metadata."""
    p60 = synth.make_pattern_video(media_dir / "p60.mp4", fps=Fraction(60), frames=90, width=320, height=180)
    return {
        "portrait_odd": synth.make_pattern_video(
            media_dir / "portrait_odd.mp4", fps=Fraction(30), frames=30, width=721, height=1281, audio=True
        ),
        "fps60": p60,
        "uhd": synth.make_pattern_video(media_dir / "uhd.mp4", fps=Fraction(25), frames=25, width=3840, height=2160),
        "vfr": synth.make_vfr_video(media_dir / "vfr.mp4", frames=60),
        "rotated": synth.make_rotated_video(p60.path, media_dir / "rotated.mp4"),
    }


@pytest.fixture(scope="session")
def bad_inputs(media_dir: Path, cut_sources: dict[str, synth.SynthVideo]) -> dict[str, Path]:
    """What people upload by mistake."""
    bad = media_dir / "bad"
    bad.mkdir()
    still = synth.make_still_png(bad / "still.png")
    return {
        "zero_byte": synth.make_zero_byte(bad / "empty.mp4"),
        "text": synth.make_text_as_mp4(bad / "notes.mp4"),
        "truncated": synth.make_truncated_mp4(cut_sources["25"].path, bad / "truncated.mp4"),
        "audio_only": synth.make_audio_only(bad / "audio.m4a"),
        "audio_with_cover": synth.make_audio_with_cover(bad / "song.mp3", still),
        "still_png": still,
        "png_named_mp4": synth.copy_as(still, bad / "picture.mp4"),
        "one_frame": synth.make_one_frame_video(bad / "one_frame.mp4"),
    }
