"""The encode stage's media work with the real ffmpeg: verified proxy, truncation caught, bad input explained."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from heaters.media.ffmpeg import proxy_args
from heaters.media.probe import MediaInfo, UnsupportedMedia, probe
from heaters.media.tools import MediaToolTimeout, run_tool
from heaters.videos.encode import (
    MASTER_NAME,
    PROXY_NAME,
    ProxyContractError,
    check_complete,
    check_proxy,
    encode_master,
    encode_proxy,
    master_command,
    proxy_command,
)
from tests.media import synth

from .conftest import SCENES


def _info(**changes: object) -> MediaInfo:
    base: dict[str, object] = dict(
        fps=Fraction(25),
        frame_count=250,
        duration_seconds=10.0,
        width=1280,
        height=720,
        has_audio=True,
        video_codec="h264",
        container="mov,mp4",
    )
    base.update(changes)
    return MediaInfo(**base)  # type: ignore[arg-type]


# ---- pure checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "output", "ok"),
    [
        (10.0, 10.0, True),
        (10.0, 9.6, True),
        (10.0, 9.4, False),  # short video: 0.5 s tolerance
        (100.0, 98.1, True),
        (100.0, 97.9, False),  # long video: 2 % tolerance
        (10.0, 11.0, True),  # longer is fine (CFR may repeat a late-starting first frame)
    ],
)
def test_check_complete_tolerance(source: float, output: float, ok: bool) -> None:
    if ok:
        check_complete(_info(duration_seconds=source), _info(duration_seconds=output))
    else:
        with pytest.raises(UnsupportedMedia, match=re.escape(f"only {output:.1f} of {source:.1f} seconds")) as info:
            check_complete(_info(duration_seconds=source), _info(duration_seconds=output))
        assert info.value.reason == "truncated"


def test_check_complete_counts_the_whole_container() -> None:
    # An mkv whose audio outlasts its video reports the container's (longer) duration for the source; the
    # proxy's video is shorter but its container (with the same audio) covers it.
    check_complete(_info(duration_seconds=6.0), _info(duration_seconds=3.0), output_container_seconds=6.0)
    with pytest.raises(UnsupportedMedia, match=re.escape("only 3.0 of 6.0 seconds")):
        check_complete(_info(duration_seconds=6.0), _info(duration_seconds=3.0), output_container_seconds=3.0)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"width": 1281}, "odd size"),
        ({"width": 1920, "height": 1080}, "above 1280x720"),
        ({"width": 720, "height": 1282}, "above 1280x720"),
        ({"fps": Fraction(50)}, "50 fps instead of 25"),
        ({"frame_count": 1}, "1 frames"),
    ],
)
def test_check_proxy_rejects_contract_violations(changes: dict[str, object], problem: str) -> None:
    check_proxy(_info(), Fraction(25))
    check_proxy(_info(width=720, height=1280), Fraction(25))  # portrait within limits
    with pytest.raises(ProxyContractError, match=problem):
        check_proxy(_info(**changes), Fraction(25))


def test_commands_are_the_plain_builders(tmp_path: Path) -> None:
    info = _info(fps=Fraction(120))
    assert proxy_command("in.mp4", "out.mp4", info, crf=30) == proxy_args("in.mp4", "out.mp4", fps=Fraction(60), crf=30)
    assert master_command("in.mp4", "out.mp4", crf=20)[-1] == "out.mp4"


# ---- real ffmpeg -------------------------------------------------------------------------------------------


def test_proxy_is_verified_and_reports_progress(small_source: synth.SynthVideo, tmp_path: Path) -> None:
    seen: list[float] = []
    result = encode_proxy(small_source.path, tmp_path, crf=28, timeout=120, on_progress=seen.append)
    assert result.path == tmp_path / PROXY_NAME and result.path.is_file()
    assert not list(tmp_path.glob("*.partial"))
    assert result.info == probe(result.path, timeout=30)
    assert (result.info.fps, result.info.frame_count) == (Fraction(25), sum(SCENES))
    assert (result.info.width, result.info.height) == (320, 180)
    assert result.info.has_audio
    assert result.source_info.frame_count == small_source.frame_count
    assert seen, "no progress reported"
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
    assert seen[-1] == 100.0 and all(0 <= p <= 100 for p in seen)
    assert len(seen) <= 2 + 10, "progress must be throttled"
    assert not (tmp_path / MASTER_NAME).exists()  # the master is a separate, optional step


def test_odd_portrait_source_gives_an_even_proxy_within_limits(tmp_path: Path) -> None:
    source = synth.make_pattern_video(
        tmp_path / "portrait.mp4", fps=Fraction(30), frames=12, width=721, height=1281, audio=True
    )
    result = encode_proxy(source.path, tmp_path / "work", crf=28, timeout=120, on_progress=None)
    width, height = result.info.width, result.info.height
    assert width % 2 == 0 and height % 2 == 0
    assert width <= 720 and height <= 1280 and (width, height) >= (718, 1276)  # fitted, aspect kept
    assert result.info.frame_count == 12


def _ffmpeg(*args: str) -> None:
    run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], timeout=60)


def test_valid_sources_are_not_mistaken_for_truncated(tmp_path: Path) -> None:
    """Audio longer than video (mkv keeps no per-stream duration), video starting late, 120 fps halved."""
    video = tmp_path / "v3.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", str(video)
    )
    long_audio = tmp_path / "long_audio.mkv"
    _ffmpeg(
        "-i",
        str(video),
        "-f",
        "lavfi",
        "-i",
        "sine=d=6",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "libopus",
        str(long_audio),
    )
    late = tmp_path / "late_video.mp4"
    _ffmpeg(
        "-itsoffset",
        "1",
        "-i",
        str(video),
        "-f",
        "lavfi",
        "-i",
        "sine=d=4",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        str(late),
    )
    fast = synth.make_pattern_video(tmp_path / "p120.mp4", fps=Fraction(120), frames=120, width=160, height=90)

    assert encode_proxy(long_audio, tmp_path / "a", crf=28, timeout=60, on_progress=None).info.frame_count == 75
    assert encode_proxy(late, tmp_path / "b", crf=28, timeout=60, on_progress=None).info.duration_seconds >= 3
    halved = encode_proxy(fast.path, tmp_path / "c", crf=28, timeout=60, on_progress=None).info
    assert halved.fps == Fraction(60) and abs(halved.duration_seconds - 1.0) < 0.05


def test_truncated_faststart_mp4_is_caught(
    truncated_faststart: Path, small_source: synth.SynthVideo, tmp_path: Path
) -> None:
    # The index is intact, so ffprobe believes the whole duration is there...
    assert probe(truncated_faststart, timeout=30).frame_count == small_source.frame_count
    # ...and ffmpeg exits 0 after the frames that exist; the duration check must notice.
    with pytest.raises(UnsupportedMedia) as info:
        encode_proxy(truncated_faststart, tmp_path, crf=28, timeout=120, on_progress=None)
    assert info.value.reason == "truncated"
    message = str(info.value)
    assert message.startswith("The file is incomplete: only ")
    assert message.split("only ")[1].split(" seconds")[0].endswith(f"of {sum(SCENES) / 25:.1f}")
    assert not list(tmp_path.iterdir()), "no proxy (or partial file) may be left behind"


def test_truncated_moov_last_mp4(small_source: synth.SynthVideo, tmp_path: Path) -> None:
    broken = synth.make_truncated_mp4(small_source.path, tmp_path / "cut.mp4")
    with pytest.raises(UnsupportedMedia, match="The MP4 file is incomplete") as info:
        encode_proxy(broken, tmp_path / "work", crf=28, timeout=60, on_progress=None)
    assert info.value.reason == "truncated"


@pytest.mark.parametrize(
    ("make", "message", "reason"),
    [
        (lambda d: synth.make_zero_byte(d / "empty.mp4"), "The file is empty (0 bytes).", "empty"),
        (lambda d: synth.make_text_as_mp4(d / "notes.mp4"), "This file is not a video FFmpeg can read", "not_media"),
        (lambda d: synth.make_audio_only(d / "song.m4a"), "The file has no video stream (audio only).", "no_video"),
        (lambda d: synth.make_still_png(d / "still.png"), "This is a still image (png), not a video.", "still_image"),
        (
            lambda d: synth.make_one_frame_video(d / "one.mp4"),
            "The video has only 1 frame; need at least 2.",
            "too_few_frames",
        ),
        (lambda d: d / "missing.mp4", "The file does not exist: missing.mp4", "missing"),
    ],
)
def test_bad_inputs_are_explained(make: object, message: str, reason: str, tmp_path: Path) -> None:
    source = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(UnsupportedMedia) as info:
        encode_proxy(source, tmp_path / "work", crf=28, timeout=60, on_progress=None)
    assert str(info.value).startswith(message)
    assert info.value.reason == reason
    assert not (tmp_path / "work" / PROXY_NAME).exists()


def test_timeout_kills_the_encode_and_leaves_nothing(tmp_path: Path) -> None:
    source = synth.make_pattern_video(tmp_path / "big.mp4", fps=Fraction(25), frames=100, width=1920, height=1080)
    with pytest.raises(MediaToolTimeout):
        encode_proxy(source.path, tmp_path / "work", crf=28, timeout=0.6, on_progress=None)
    work = tmp_path / "work"
    assert work.is_dir() and not any(work.iterdir()), "the killed encode's partial file must be removed"


def test_master_keeps_full_size_and_duration(small_source: synth.SynthVideo, tmp_path: Path) -> None:
    seen: list[float] = []
    result = encode_master(small_source.path, tmp_path, crf=23, timeout=120, on_progress=seen.append)
    assert result.path == tmp_path / MASTER_NAME
    assert (result.info.width, result.info.height) == (320, 180)
    assert result.info.frame_count == small_source.frame_count
    assert result.info.has_audio
    assert seen and seen[-1] == 100.0 and seen == sorted(seen)
    assert not (tmp_path / PROXY_NAME).exists()
