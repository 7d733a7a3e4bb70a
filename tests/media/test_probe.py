"""probe(): exact facts about real files, and a sentence a person understands for each bad input."""

from __future__ import annotations

import socket
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from heaters.errors import PermanentError, TransientError
from heaters.media.probe import MediaInfo, MediaUnreachable, UnsupportedMedia, describe, probe, useful_line
from heaters.media.tools import run_tool

from . import synth

TIMEOUT = 30.0


@pytest.mark.parametrize("rate", ["25", "30", "29.97"])
def test_probe_of_a_proxy_is_exact(rate: str, cut_proxies: dict[str, synth.SynthVideo]) -> None:
    proxy = cut_proxies[rate]
    info = probe(proxy.path, timeout=TIMEOUT)
    assert isinstance(info, MediaInfo)
    assert info.fps == proxy.fps and isinstance(info.fps, Fraction)
    assert info.frame_count == proxy.frame_count == 241
    assert (info.width, info.height) == (160, 90)
    assert info.has_audio and info.video_codec == "h264" and info.container.startswith("mov,mp4")
    assert info.duration_seconds == pytest.approx(float(241 / proxy.fps), abs=1e-3)
    assert not info.variable_frame_rate and info.rotation == 0


def test_probe_accepts_str_paths(cut_sources: dict[str, synth.SynthVideo]) -> None:
    assert probe(str(cut_sources["25"].path), timeout=TIMEOUT).frame_count == 241


def test_rotation_metadata_gives_the_displayed_size(odd_inputs: dict[str, Any]) -> None:
    info = probe(odd_inputs["rotated"], timeout=TIMEOUT)  # coded 320x180, shown turned a quarter
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (180, 320)


def test_odd_portrait_size_is_reported_as_is(odd_inputs: dict[str, Any]) -> None:
    info = probe(odd_inputs["portrait_odd"].path, timeout=TIMEOUT)
    assert (info.width, info.height) == (721, 1281) and info.has_audio


def test_vfr_keeps_the_nominal_rate_and_reports_the_average(odd_inputs: dict[str, Any]) -> None:
    info = probe(odd_inputs["vfr"], timeout=TIMEOUT)
    assert info.fps == Fraction(30)  # r_frame_rate: plausible, so it wins
    assert info.avg_frame_rate == Fraction(1800, 89)  # 60 frames in 2.967 s
    assert info.frame_count == 60
    assert info.variable_frame_rate


def test_frame_count_without_nb_frames_counts_packets(cut_sources: dict[str, synth.SynthVideo], tmp_path: Path) -> None:
    mkv = tmp_path / "cuts.mkv"  # Matroska stores no frame count
    source = cut_sources["29.97"].path
    run_tool(["ffmpeg", "-v", "error", "-i", str(source), "-c", "copy", str(mkv)], timeout=30)
    stream = run_tool(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_frames",
            "-of",
            "csv=p=0",
            str(mkv),
        ],
        timeout=30,
    ).stdout_text.strip()
    assert stream == "N/A"
    info = probe(mkv, timeout=TIMEOUT)
    assert info.frame_count == 241 and info.fps == Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("name", "reason", "message"),
    [
        ("zero_byte", "empty", "The file is empty (0 bytes)."),
        ("text", "not_media", "This file is not a video FFmpeg can read: Invalid data found when processing input"),
        ("audio_only", "no_video", "The file has no video stream (audio only)."),
        ("audio_with_cover", "no_video", "The file has no video stream (audio only)."),
        ("still_png", "still_image", "This is a still image (png), not a video."),
        ("png_named_mp4", "still_image", "This is a still image (png), not a video."),
        ("one_frame", "too_few_frames", "The video has only 1 frame; need at least 2."),
    ],
)
def test_bad_inputs_get_a_human_message(name: str, reason: str, message: str, bad_inputs: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedMedia) as caught:
        probe(bad_inputs[name], timeout=TIMEOUT)
    assert str(caught.value) == message
    assert caught.value.reason == reason
    assert isinstance(caught.value, PermanentError)


def test_truncated_mp4_is_called_incomplete(bad_inputs: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedMedia) as caught:
        probe(bad_inputs["truncated"], timeout=TIMEOUT)
    assert caught.value.reason == "truncated"
    assert str(caught.value).startswith("The MP4 file is incomplete")
    assert "cut short" in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match=r"does not exist: nothing\.mp4"):
        probe(tmp_path / "nothing.mp4", timeout=TIMEOUT)


def test_a_jpeg_is_a_still_image(tmp_path: Path) -> None:
    jpeg = tmp_path / "photo.jpg"
    run_tool(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x90", "-frames:v", "1", str(jpeg)], timeout=30
    )
    with pytest.raises(UnsupportedMedia, match=r"still image \(mjpeg\)"):
        probe(jpeg, timeout=TIMEOUT)


def test_an_animated_gif_is_a_video(tmp_path: Path) -> None:
    gif = tmp_path / "anim.gif"
    run_tool(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=10", "-frames:v", "10", str(gif)],
        timeout=30,
    )
    info = probe(gif, timeout=TIMEOUT)
    assert info.frame_count == 10 and info.fps == 10


def test_unreachable_url_is_transient() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(MediaUnreachable) as caught:
        probe(f"http://127.0.0.1:{port}/video.mp4", timeout=TIMEOUT)
    assert isinstance(caught.value, TransientError)
    assert "Connection refused" in str(caught.value)


# ---- describe(): the decisions, on hand-written ffprobe JSON ----------------------------------------------


def _video(**fields: Any) -> dict[str, Any]:
    stream = {
        "index": 0,
        "codec_type": "video",
        "codec_name": "h264",
        "width": 1920,
        "height": 1080,
        "r_frame_rate": "30/1",
        "avg_frame_rate": "30/1",
        "nb_frames": "300",
        "duration": "10.0",
    }
    stream.update(fields)
    return stream


def _data(*streams: dict[str, Any], format_name: str = "mov,mp4,m4a,3gp,3g2,mj2") -> dict[str, Any]:
    return {"streams": list(streams), "format": {"format_name": format_name, "duration": "10.5"}}


def test_describe_prefers_r_frame_rate_but_not_a_bogus_one() -> None:
    assert describe(_data(_video())).fps == 30
    ntsc = describe(_data(_video(r_frame_rate="30000/1001", avg_frame_rate="2997/100")))
    assert ntsc.fps == Fraction(30000, 1001)
    webm = describe(_data(_video(r_frame_rate="1000/1", avg_frame_rate="24000/1001")))
    assert webm.fps == Fraction(24000, 1001)  # 1000 fps is a timestamp unit, not a frame rate
    assert describe(_data(_video(r_frame_rate="0/0", avg_frame_rate="25/1"))).fps == 25


def test_describe_without_any_plausible_rate_refuses() -> None:
    with pytest.raises(UnsupportedMedia) as caught:
        describe(_data(_video(r_frame_rate="90000/1", avg_frame_rate="0/0")))
    assert caught.value.reason == "no_frame_rate"


def test_describe_rotation_from_display_matrix_or_tag() -> None:
    matrix = describe(_data(_video(side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}])))
    assert (matrix.width, matrix.height, matrix.rotation) == (1080, 1920, 270)
    tag = describe(_data(_video(tags={"rotate": "90"})))
    assert (tag.width, tag.height) == (1080, 1920)
    upside_down = describe(_data(_video(side_data_list=[{"rotation": 180}])))
    assert (upside_down.width, upside_down.height) == (1920, 1080)


def test_describe_skips_cover_art_and_uses_the_real_video() -> None:
    cover = _video(index=0, codec_name="mjpeg", disposition={"attached_pic": 1}, nb_frames="1")
    real = _video(index=1, codec_name="vp9", width=640, height=360)
    info = describe(_data(cover, real, {"index": 2, "codec_type": "audio"}))
    assert (info.video_codec, info.width, info.has_audio) == ("vp9", 640, True)


def test_describe_counts_frames_only_when_the_container_does_not() -> None:
    asked: list[int] = []

    def counter(index: int) -> int:
        asked.append(index)
        return 123

    assert describe(_data(_video(nb_frames="300")), frame_counter=counter).frame_count == 300
    assert asked == []
    assert describe(_data(_video(index=3, nb_frames=None)), frame_counter=counter).frame_count == 123
    assert asked == [3]


def test_describe_duration_fallbacks() -> None:
    assert describe(_data(_video(duration="9.9"))).duration_seconds == 9.9
    assert describe(_data(_video(duration=None))).duration_seconds == 10.5  # the container's
    no_durations = {"streams": [_video(duration=None)], "format": {"format_name": "matroska,webm"}}
    assert describe(no_durations).duration_seconds == 10.0  # 300 frames / 30 fps


def test_describe_rejects_missing_size_and_no_streams() -> None:
    with pytest.raises(UnsupportedMedia, match="no picture size"):
        describe(_data(_video(width=0)))
    with pytest.raises(UnsupportedMedia, match=r"^The file has no video stream\.$"):
        describe(_data())


def test_useful_line_strips_paths_and_demuxer_prefixes() -> None:
    stderr = (
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d] moov atom not found\n/tmp/x.mp4: Invalid data found when processing input"
    )
    assert useful_line(stderr, "/tmp/x.mp4") == "Invalid data found when processing input"
    assert useful_line("[h264 @ 0x1] broken stream\n", "other") == "broken stream"
    assert useful_line("", "x") == ""
