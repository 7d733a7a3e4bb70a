"""ffmpeg argv builders: pinned by list equality, then checked on real ffmpeg 5.1 output.

The real-ffmpeg half proves the flags do what the builders' docstrings claim: a valid all-intra CFR even
<=720p proxy from awkward sources, frame-exact stream copies, and single frames from the right index.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from heaters.media import ffmpeg
from heaters.media.ffmpeg import (
    ProgressParser,
    master_args,
    parse_progress,
    proxy_args,
    proxy_fps,
    seconds_arg,
    single_frame_args,
    stream_copy_args,
)
from heaters.media.tools import MediaToolError, run_tool

from . import synth

SCALE = (
    "scale=w='if(gte(iw,ih),min(1280,iw),min(720,iw))':h='if(gte(iw,ih),min(720,ih),min(1280,ih))'"
    ":force_original_aspect_ratio=decrease:force_divisible_by=2"
)
HEAD = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y"]


# ---- pure: argument lists ---------------------------------------------------------------------------------


def test_proxy_args() -> None:
    assert proxy_args("in.mov", Path("out/proxy.mp4"), fps=Fraction(30000, 1001)) == [
        *HEAD,
        "-i",
        "in.mov",
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-vf",
        "fps=fps=30000/1001:start_time=0:round=near," + SCALE,
        "-fps_mode",
        "cfr",
        "-r",
        "30000/1001",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",  # docs/benchmarks.md, "Proxy preset"
        "-crf",
        "28",
        "-pix_fmt",
        "yuv420p",
        "-profile:v",
        "high",
        "-level:v",
        "4.2",
        "-g",
        "1",
        "-keyint_min",
        "1",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-max_muxing_queue_size",
        "4096",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        "-progress",
        "pipe:2",
        "out/proxy.mp4",
    ]


def test_proxy_args_options() -> None:
    args = proxy_args("a", "b", fps=Fraction(25), crf=23, preset="veryfast", audio_bitrate="128k")
    assert args[args.index("-r") + 1] == "25/1"
    assert args[args.index("-crf") + 1] == "23"
    assert args[args.index("-preset") + 1] == "veryfast"
    assert args[args.index("-b:a") + 1] == "128k"
    with pytest.raises(ValueError):
        proxy_args("a", "b", fps=Fraction(0))


def test_master_args() -> None:
    assert master_args("in.mov", "master.mp4") == [
        *HEAD,
        "-i",
        "in.mov",
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-vf",
        "crop=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        "-profile:v",
        "high",
        "-g",
        "250",
        "-bf",
        "3",
        "-c:a",
        "aac",
        "-b:a",
        "256k",
        "-max_muxing_queue_size",
        "4096",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        "-progress",
        "pipe:2",
        "master.mp4",
    ]


def test_stream_copy_args() -> None:
    # frame 100 at 30000/1001 starts at 3.3366666... s; 30 frames last 1.001 s
    assert stream_copy_args(
        "https://cdn/proxy.mp4", "clip.mp4", start_frame=100, end_frame=130, fps=Fraction(30000, 1001)
    ) == [
        *HEAD,
        "-ss",
        "3.336667",
        "-i",
        "https://cdn/proxy.mp4",
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-frames:v",
        "30",
        "-t",
        "1.001000",
        "-c",
        "copy",
        "-avoid_negative_ts",
        "disabled",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        "clip.mp4",
    ]


@pytest.mark.parametrize(("start", "end"), [(-1, 5), (5, 5), (6, 5), (90, 101)])
def test_stream_copy_args_rejects_empty_negative_or_past_the_end_ranges(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        stream_copy_args("a", "b", start_frame=start, end_frame=end, fps=Fraction(25), frame_count=100)
    assert stream_copy_args("a", "b", start_frame=0, end_frame=100, fps=Fraction(25), frame_count=100)


def test_single_frame_args_seek_half_a_frame_early() -> None:
    assert single_frame_args("clip.mp4", "k.jpg", frame=50, fps=Fraction(25)) == [
        *HEAD,
        "-ss",
        "1.980000",
        "-i",
        "clip.mp4",
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-q:v",
        "2",
        "-abort_on",
        "empty_output",
        "-f",
        "image2",
        "-update",
        "1",
        "k.jpg",
    ]
    first = single_frame_args("clip.mp4", "k.jpg", frame=0, fps=Fraction(25), max_width=320)
    assert first[first.index("-ss") + 1] == "0.000000"
    assert first[first.index("-vf") + 1] == "scale=w='min(320,iw)':h=-2"


def test_seconds_arg_is_exact_to_the_microsecond() -> None:
    assert seconds_arg(Fraction(0)) == "0.000000"
    assert seconds_arg(Fraction(1001, 30000)) == "0.033367"
    assert seconds_arg(Fraction(3 * 3600 * 30000 + 1, 30000)) == "10800.000033"
    assert seconds_arg(Fraction(324_000 * 1001, 30000)) == "10810.800000"  # 3 h of 29.97: no float drift
    with pytest.raises(ValueError):
        seconds_arg(Fraction(-1))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (Fraction(25), Fraction(25)),
        (Fraction(30), Fraction(30)),  # 30 must not snap to its NTSC neighbour 0.1 % away
        (Fraction(60), Fraction(60)),
        (Fraction(2997, 100), Fraction(30000, 1001)),
        (Fraction(2997, 125), Fraction(24000, 1001)),
        (Fraction(5994, 100), Fraction(60000, 1001)),
        (Fraction(120), Fraction(60)),
        (Fraction(100), Fraction(50)),
        (Fraction(240), Fraction(60)),
        (Fraction(1800, 89), Fraction(1800, 89)),
    ],
)
def test_proxy_fps(source: Fraction, expected: Fraction) -> None:
    assert proxy_fps(source) == expected


# ---- pure: -progress parsing ------------------------------------------------------------------------------

PROGRESS = """frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=N/A
out_time_ms=N/A
out_time=N/A
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
[mp4 @ 0x55d] Starting second pass: moving the moov atom to the beginning of the file
frame=120
fps=0.00
stream_0_0_q=28.0
bitrate= 221.3kbits/s
total_size=266711
out_time_us=4800000
out_time_ms=4800000
out_time=00:00:04.800000
dup_frames=0
drop_frames=0
speed= 104x
progress=continue
frame=241
out_time_us=9640000
progress=end""".splitlines()


def test_parse_progress_by_frames() -> None:
    updates = parse_progress(PROGRESS, total_frames=241)
    assert [u.frame for u in updates] == [0, 120, 241]
    assert [round(u.percent or 0, 2) for u in updates] == [0.0, 49.79, 100.0]
    assert [u.done for u in updates] == [False, False, True]
    assert updates[0].out_time_seconds is None  # N/A before the first frame
    assert updates[1].out_time_seconds == 4.8


def test_parse_progress_by_duration() -> None:
    updates = parse_progress(PROGRESS, total_seconds=9.64)
    assert [round(u.percent or 0, 2) for u in updates] == [0.0, 49.79, 100.0]


def test_progress_end_is_100_even_when_counts_disagree() -> None:
    assert parse_progress(["frame=200", "progress=end"], total_frames=241)[-1].percent == 100.0
    assert parse_progress(["frame=300", "progress=continue"], total_frames=241)[-1].percent == 100.0


def test_progress_parser_as_stderr_callback() -> None:
    reported: list[float] = []
    parser = ProgressParser(total_frames=100, on_progress=reported.append, step=10)
    consumed = [
        parser(line)
        for line in [
            "frame=1",
            "progress=continue",
            "frame=5",
            "progress=continue",
            "Error opening output file",
            "frame=30",
            "progress=continue",
            "frame=100",
            "progress=end",
        ]
    ]
    assert consumed == [True, True, True, True, False, True, True, True, True]
    assert reported == [1.0, 30.0, 100.0]  # 5 % was under the 10 % step
    assert parser.done and parser.percent == 100.0


def test_progress_line_recognition() -> None:
    assert ffmpeg.is_progress_line("out_time_us=123")
    assert ffmpeg.is_progress_line("stream_1_0_q=-1.0")
    assert not ffmpeg.is_progress_line("[h264 @ 0x1] error=while decoding")
    assert not ffmpeg.is_progress_line("Conversion failed!")


def test_progress_parser_without_totals_only_filters() -> None:
    parser = ProgressParser()
    assert parser("frame=10") and parser("progress=continue") and not parser("Error while decoding")
    assert parser.percent is None
    parser("progress=end")
    assert parser.percent == 100.0


# ---- real ffmpeg: the proxy ------------------------------------------------------------------------------


def _ffprobe_json(*args: str) -> dict:
    return json.loads(run_tool(["ffprobe", "-v", "error", "-of", "json", *args], timeout=60).stdout_text)


def _video_stream(path: Path) -> dict:
    return _ffprobe_json("-select_streams", "v:0", "-show_streams", str(path))["streams"][0]


def _packet_flags(path: Path) -> list[str]:
    packets = _ffprobe_json("-select_streams", "v:0", "-show_entries", "packet=flags", str(path))["packets"]
    return [p["flags"] for p in packets]


def _packet_hashes(path: Path) -> list[str]:
    """One md5 per video packet: stream copy must reproduce the proxy's packets byte for byte."""
    out = run_tool(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"], timeout=60
    ).stdout_text
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]


def _assert_valid_proxy(path: Path, *, fps: Fraction, max_w: int = 1280, max_h: int = 720) -> dict:
    stream = _video_stream(path)
    width, height = stream["width"], stream["height"]
    assert width % 2 == 0 and height % 2 == 0
    assert max(width, height) <= max(max_w, max_h) and min(width, height) <= min(max_w, max_h)
    assert Fraction(stream["r_frame_rate"]) == fps == Fraction(stream["avg_frame_rate"])  # CFR
    frames = int(stream["nb_frames"])
    assert frames == round(float(stream["duration"]) * fps)
    assert stream["profile"] == "High" and stream["pix_fmt"] == "yuv420p"
    flags = _packet_flags(path)
    assert len(flags) == frames
    assert all(flag.startswith("K") for flag in flags), "every frame must be a keyframe"
    assert "side_data_list" not in stream  # rotation was applied to the pixels, not carried along
    return stream


@pytest.mark.parametrize("name", ["portrait_odd", "fps60", "uhd", "vfr", "rotated"])
def test_awkward_sources_make_valid_proxies(name: str, odd_inputs: dict, media_dir: Path) -> None:
    source = odd_inputs[name]
    path = source.path if isinstance(source, synth.SynthVideo) else source
    source_stream = _video_stream(path)
    fps = proxy_fps(Fraction(source_stream["r_frame_rate"]))
    proxy = media_dir / f"{name}.proxy.mp4"
    parser = ProgressParser(total_seconds=float(source_stream["duration"]))
    run_tool(proxy_args(path, proxy, fps=fps), timeout=120, on_stderr_line=parser)
    assert parser.done and parser.percent == 100.0
    stream = _assert_valid_proxy(proxy, fps=fps)
    size = (stream["width"], stream["height"])
    expected = {
        "portrait_odd": (720, 1278),  # 721x1281 -> fits 720 wide, even, aspect kept, never upscaled
        "fps60": (320, 180),
        "uhd": (1280, 720),
        "vfr": (160, 90),
        "rotated": (180, 320),
    }[name]  # 320x180 coded, rotated 90° for display
    assert size == expected
    if name == "vfr":
        # 60 frames over 2.967 s at a nominal 30 fps: CFR fills the long frames in with repeats
        assert int(stream["nb_frames"]) == 89


def test_master_keeps_size_and_evens_odd_dimensions(odd_inputs: dict, media_dir: Path) -> None:
    master = media_dir / "portrait_odd.master.mp4"
    run_tool(master_args(odd_inputs["portrait_odd"].path, master, preset="ultrafast"), timeout=120)
    stream = _video_stream(master)
    assert (stream["width"], stream["height"]) == (720, 1280)
    assert not all(flag.startswith("K") for flag in _packet_flags(master))  # a normal GOP


# ---- real ffmpeg: stream copy and single frames on the all-intra proxy -------------------------------------


@pytest.mark.parametrize("rate", ["25", "30", "29.97"])
def test_stream_copy_is_frame_exact(rate: str, cut_proxies: dict, tmp_path: Path) -> None:
    proxy = cut_proxies[rate]
    reference = _packet_hashes(proxy.path)
    assert len(reference) == proxy.frame_count
    rng = random.Random(rate)
    ranges = [(0, 1), (0, 37), (1, 2), (36, 38), (proxy.frame_count - 1, proxy.frame_count), (200, proxy.frame_count)]
    ranges += [(s, s + rng.randint(1, 40)) for s in rng.sample(range(0, proxy.frame_count - 41), 5)]
    for start, end in ranges:
        clip = tmp_path / f"clip_{start}_{end}.mp4"
        args = stream_copy_args(proxy.path, clip, start_frame=start, end_frame=end, fps=proxy.fps)
        run_tool(args, timeout=30)
        assert _packet_hashes(clip) == reference[start:end], f"[{start}, {end}) at {rate} fps"
        streams = {s["codec_type"]: s for s in _ffprobe_json("-show_streams", str(clip))["streams"]}
        assert float(streams["video"]["start_time"]) == 0.0  # clip time t shows frame start + round(t * fps)
        assert int(streams["video"]["nb_frames"]) == end - start
        if end - start >= 5:  # a one-frame clip from frame 0 can end before the first whole audio packet
            assert float(streams["audio"]["start_time"]) == 0.0  # pre-roll kept as an edit list, not a shift


@pytest.mark.parametrize("frame", [0, 1, 36, 37, 120, 240])
def test_single_frame_is_the_requested_frame(frame: int, cut_proxies: dict, tmp_path: Path) -> None:
    proxy = cut_proxies["29.97"]
    got, want = tmp_path / "got.jpg", tmp_path / "want.jpg"
    run_tool(single_frame_args(proxy.path, got, frame=frame, fps=proxy.fps), timeout=30)
    # reference: decode from the start and select the frame by index (slow but unambiguous)
    run_tool(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(proxy.path),
            "-map",
            "0:v:0",
            "-vf",
            f"select=eq(n\\,{frame})",
            "-frames:v",
            "1",
            "-q:v",
            "2",
            "-f",
            "image2",
            str(want),
        ],
        timeout=30,
    )
    neighbour = tmp_path / "neighbour.jpg"
    other = frame + 1 if frame + 1 < proxy.frame_count else frame - 1
    run_tool(single_frame_args(proxy.path, neighbour, frame=other, fps=proxy.fps), timeout=30)
    assert got.read_bytes() == want.read_bytes()
    assert got.read_bytes() != neighbour.read_bytes()  # frames differ, so equality above means something


def test_single_frame_past_the_end_fails_instead_of_writing_nothing(cut_proxies: dict, tmp_path: Path) -> None:
    proxy = cut_proxies["25"]
    args = single_frame_args(proxy.path, tmp_path / "x.jpg", frame=proxy.frame_count + 5, fps=proxy.fps)
    with pytest.raises(MediaToolError, match="Empty output"):
        run_tool(args, timeout=30)


def test_a_failed_encode_reports_ffmpegs_own_words(bad_inputs: dict[str, Path], tmp_path: Path) -> None:
    parser = ProgressParser(total_frames=100)
    with pytest.raises(MediaToolError) as caught:
        run_tool(
            proxy_args(bad_inputs["text"], tmp_path / "p.mp4", fps=Fraction(25)), timeout=30, on_stderr_line=parser
        )
    assert "Invalid data found when processing input" in str(caught.value)
    assert "progress=" not in caught.value.stderr_tail


def test_chunk_args_seek_with_cancelling_offsets_and_trim_by_output_frame() -> None:
    args = ffmpeg.chunk_args("in.mp4", "c.mp4", fps=Fraction(30), start_frame=600, end_frame=1200,
                             analysis_size=(256, 144))  # fmt: skip
    seek = args[args.index("-ss") + 1]
    assert seek == "20.000000" and args[args.index("-itsoffset") + 1] == seek
    assert args.index("-noaccurate_seek") < args.index("-ss") < args.index("-i")
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:v:0]fps=fps=30/1:start_time=0:round=near,trim=start_pts=599:end_pts=1200,")
    assert "[whole]trim=start_pts=1," in graph and "scale=256:144:flags=fast_bilinear,format=bgr24[scan]" in graph
    assert args[args.index("-frames:v") + 1] == "600" and args[args.index("-movie_timescale") + 1] == "15360"
    assert args[-3:] == ["-f", "rawvideo", "pipe:1"] and "-an" in args


def test_the_first_and_the_open_last_chunk() -> None:
    first = ffmpeg.chunk_args("in.mp4", "c.mp4", fps=Fraction(25), start_frame=0, end_frame=500,
                              analysis_size=(256, 144))  # fmt: skip
    graph = first[first.index("-filter_complex") + 1]
    assert "trim=start_pts=0:end_pts=500," in graph and "[whole]trim=start_pts=0," in graph  # no reference frame
    last = ffmpeg.chunk_args("in.mp4", "c.mp4", fps=Fraction(25), start_frame=500, end_frame=None,
                             analysis_size=(256, 144), scan=False)  # fmt: skip
    assert "-frames:v" not in last and "pipe:1" not in last and "end_pts" not in last[last.index("-filter_complex") + 1]
    with pytest.raises(ValueError):
        ffmpeg.chunk_args("in.mp4", "c.mp4", fps=Fraction(25), start_frame=10, end_frame=10, analysis_size=(2, 2))


@pytest.mark.parametrize(
    ("fps", "scale"),
    [(Fraction(30), 15360), (Fraction(25), 12800), (Fraction(30000, 1001), 30000), (Fraction(60), 15360)],
)
def test_track_timescale_is_the_muxers(fps: Fraction, scale: int) -> None:
    assert ffmpeg.track_timescale(fps) == scale


def test_chunk_inpoint_is_the_frames_start_in_its_chunk() -> None:
    assert ffmpeg.chunk_inpoint(1210, 1200, Fraction(30000, 1001)) == "0.333667"
    assert ffmpeg.chunk_inpoint(600, 600, Fraction(30)) == "0.000000"
