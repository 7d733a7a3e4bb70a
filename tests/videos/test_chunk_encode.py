"""The chunked proxy with the real ffmpeg, against the single pass (`encode_proxy`) of the same source.

Each source is encoded once in a single pass and in chunks (`plan_chunks` + `encode_chunk`), then joined
(`join_chunks`). The chunked result must be the single pass's: the same frames (none lost, doubled or
shifted), the same rate and size, frame n at n/fps, the same audio, and the scan's cuts on the known frames.

How "the same frame" is decided: both proxies are decoded to gray, and chunked frame i must be closer (mean
absolute difference) to single-pass frame i than to frames i - 1 and i + 1. The frames are not bit-identical:
x264's rate control starts afresh in every chunk, so the first few frames of a chunk get other quantizers.
At the production crf (28) that noise is as large as the frame-to-frame motion of the fine-detailed scenes
(mandelbrot), so even the single pass's own frames are not closest to their source frames; these tests
encode at CRF 8, where compression noise is a fraction of the motion and a shifted frame cannot pass.
Within the chunked path the comparisons are exact: the joined proxy decodes to exactly its chunks' frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from heaters.media.ffmpeg import chunk_inpoint, proxy_fps
from heaters.media.probe import UnsupportedMedia, probe
from heaters.media.scene_scores import analysis_size, replay_cuts
from heaters.media.scenes import detect_cuts
from heaters.media.segments import copy_chunked_segment, copy_segment
from heaters.media.tools import run_tool
from heaters.settings import Settings
from heaters.videos.chunk_encode import EncodedChunk, check_tail, encode_chunk, join_chunks, write_concat_list
from heaters.videos.chunking import Plan, plan_chunks
from heaters.videos.encode import EncodedProxy, encode_proxy
from tests.media import synth

CRF = 8  # see the module docstring
TIMEOUT = 120.0
SCENES = (37, 29, 45)  # cuts at 37 and 66; 111 frames
NTSC = Fraction(30000, 1001)
# The production chunk length at 29.97 fps: 599 frames (19.987 s), with the default PROXY_CHUNK_SECONDS.
DEFAULT_NTSC_CHUNK = round(Fraction(Settings.model_fields["proxy_chunk_seconds"].default) * NTSC)


@dataclass(frozen=True)
class Source:
    path: Path
    cuts: tuple[int, ...]  # the first frame of each new scene, in proxy frames
    frames: int  # the proxy's frame count
    size: tuple[int, int]  # the proxy's width and height
    vfr: bool = False


@dataclass
class ChunkRun:
    plan: Plan
    chunks: list[EncodedChunk]

    @property
    def paths(self) -> list[Path]:
        return [chunk.path for chunk in self.chunks if chunk.path is not None]

    @property
    def scores(self) -> list[float]:
        return [score for chunk in self.chunks for score in chunk.scores]


def _ffmpeg(*args: str | Path) -> None:
    run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], timeout=TIMEOUT)


@dataclass
class Lab:
    """Sources, single passes, chunk runs and decodes, each made on first use and kept for the module."""

    root: Path
    _sources: dict[str, Source] = field(default_factory=dict)
    _singles: dict[str, EncodedProxy] = field(default_factory=dict)
    _runs: dict[tuple[str, int], ChunkRun] = field(default_factory=dict)
    _joins: dict[tuple[str, int], EncodedProxy] = field(default_factory=dict)
    _gray: dict[Path, np.ndarray] = field(default_factory=dict)

    def source(self, name: str) -> Source:
        if name not in self._sources:
            self._sources[name] = self._make(name)
        return self._sources[name]

    def _make(self, name: str) -> Source:
        out = self.root / "sources"
        out.mkdir(exist_ok=True)
        rates = {"25": Fraction(25), "30": Fraction(30), "29.97": NTSC, "60": Fraction(60)}
        if name == "29.97-long":  # two production-sized chunks
            video = synth.make_cut_video(out / "long.mp4", fps=NTSC, scene_frames=(250, 400))
            return Source(video.path, video.cuts, video.frame_count, (160, 90))
        if name in rates:
            size = (320, 180) if name == "25" else (160, 90)  # 320x180 is scanned downscaled, 160x90 as is
            video = synth.make_cut_video(
                out / f"{name}.mp4", fps=rates[name], scene_frames=SCENES, width=size[0], height=size[1]
            )
            return Source(video.path, video.cuts, video.frame_count, size)
        if name == "portrait":  # a phone's portrait recording: landscape pixels, 90 degree rotation metadata
            video = synth.make_cut_video(
                out / "landscape.mp4", fps=Fraction(30), scene_frames=SCENES, width=320, height=180
            )
            path = synth.make_rotated_video(video.path, out / "portrait.mp4")
            return Source(path, video.cuts, video.frame_count, (180, 320))
        if name == "vfr":
            # Frame k at (k + k // 2) / 30 s: durations alternate 1/30 and 2/30 s. At 30 fps the proxy shows
            # frame k from slot k + k // 2 on (each long frame twice): cuts at 37 + 18 and 66 + 33.
            video = synth.make_cut_video(out / "cfr30.mp4", fps=Fraction(30), scene_frames=SCENES, audio=False)
            path = out / "vfr.mp4"
            _ffmpeg(
                "-i", video.path, "-vf", "setpts='(N+floor(N/2))/(30*TB)'", "-fps_mode", "vfr",
                "-c:v", "libx264", "-preset", "ultrafast", "-video_track_timescale", "90000", path,
            )  # fmt: skip
            return Source(path, (55, 99), 166, (160, 90), vfr=True)
        if name == "4k":  # drawn small (mandelbrot at 4K takes half a minute), scaled up to 3840x2160
            video = synth.make_cut_video(
                out / "small.mp4", fps=Fraction(25), scene_frames=(20, 18), width=480, height=270
            )
            path = out / "uhd.mp4"
            _ffmpeg(
                "-i", video.path, "-vf", "scale=3840:2160:flags=bicubic", "-c:v", "libx264", "-preset", "ultrafast",
                "-g", "48", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "copy", path,
            )  # fmt: skip
            return Source(path, video.cuts, video.frame_count, (1280, 720))
        raise KeyError(name)

    def single(self, name: str) -> EncodedProxy:
        if name not in self._singles:
            self._singles[name] = encode_proxy(
                self.source(name).path, self.root / name / "single", crf=CRF, timeout=TIMEOUT
            )
        return self._singles[name]

    def chunked(self, name: str, chunk_frames: int) -> ChunkRun:
        key = (name, chunk_frames)
        if key not in self._runs:
            single = self.single(name)  # what the plan stage knows: the source's probe
            info = single.source_info
            fps = proxy_fps(info.fps)
            plan = plan_chunks(max(1, round(Fraction(info.duration_seconds) * fps)), chunk_frames)
            chunks = [
                encode_chunk(
                    str(self.source(name).path),
                    self.root / name / f"chunks-{chunk_frames}" / f"{index:03d}",
                    fps=fps,
                    start_frame=start,
                    end_frame=end,
                    analysis_size=analysis_size(info.width, info.height),
                    detector="adaptive",
                    crf=CRF,
                    timeout=TIMEOUT,
                )
                for index, (start, end) in enumerate(plan)
            ]
            self._runs[key] = ChunkRun(plan, chunks)
        return self._runs[key]

    def join(self, name: str, chunk_frames: int) -> EncodedProxy:
        key = (name, chunk_frames)
        if key not in self._joins:
            run, single = self.chunked(name, chunk_frames), self.single(name)
            work = self.root / name / f"joined-{chunk_frames}"
            work.mkdir(parents=True, exist_ok=True)
            self._joins[key] = join_chunks(
                run.paths,
                str(self.source(name).path),
                work,
                fps=single.info.fps,
                expected_frames=sum(chunk.frames for chunk in run.chunks),
                source_info=single.source_info,
                timeout=TIMEOUT,
            )
        return self._joins[key]

    def gray(self, path: Path) -> np.ndarray:
        if path not in self._gray:
            self._gray[path] = _decode_gray(path)
        return self._gray[path]

    def chunk_frames(self, name: str, chunk_frames: int) -> np.ndarray:
        return np.concatenate([self.gray(path) for path in self.chunked(name, chunk_frames).paths])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return Lab(tmp_path_factory.mktemp("chunk_encode"))


def _decode_gray(path: Path) -> np.ndarray:
    info = probe(path, timeout=30, min_frames=1)  # a last chunk may be one frame
    args = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
            "-f", "rawvideo", "-pix_fmt", "gray", "-"]  # fmt: skip
    result = run_tool(args, timeout=TIMEOUT, max_stdout_bytes=1 << 30)
    return np.frombuffer(result.stdout, dtype=np.uint8).reshape(-1, info.height, info.width)


def _decode_pcm(path: Path) -> tuple[np.ndarray, int]:
    """The first audio stream as 16-bit samples (all channels interleaved) and its sample rate."""
    streams = json.loads(
        run_tool(
            ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate,channels",
             "-of", "json", str(path)],
            timeout=30,
        ).stdout_text
    )["streams"]  # fmt: skip
    rate, channels = int(streams[0]["sample_rate"]), int(streams[0]["channels"])
    result = run_tool(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le", "-"],
        timeout=TIMEOUT,
        max_stdout_bytes=1 << 30,
    )
    return np.frombuffer(result.stdout, dtype="<i2").reshape(-1, channels), rate


def _video_times(path: Path) -> list[Fraction]:
    """Each video packet's presentation time in seconds, exactly, in file order."""
    data = json.loads(
        run_tool(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=time_base:packet=pts",
             "-of", "json", str(path)],
            timeout=30,
        ).stdout_text
    )  # fmt: skip
    time_base = Fraction(data["streams"][0]["time_base"])
    return [int(packet["pts"]) * time_base for packet in data["packets"]]


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


NOISE = 0.1  # mean absolute difference (of 255) between two encodes of one picture at CRF 8, measured


def _assert_same_frames(ours: np.ndarray, theirs: np.ndarray, *, duplicates: bool = False) -> None:
    """Frame i of `ours` is closest to frame i of `theirs` (not i - 1 or i + 1): none lost, doubled, shifted.

    `duplicates`: `theirs` repeats frames (a VFR source at a constant rate), so a neighbour may be the same
    picture, and the two encodes' noise then decides which is nearer: a difference within `NOISE` of the
    neighbour's is a tie; a shifted frame is off by a frame's motion, far more."""
    assert ours.shape == theirs.shape, f"{ours.shape} frames, expected {theirs.shape}"
    wrong = []
    for i in range(len(ours)):
        same = _mad(ours[i], theirs[i])
        nearest = min(_mad(ours[i], theirs[j]) for j in (i - 1, i + 1) if 0 <= j < len(theirs))
        if not (same <= nearest + NOISE if duplicates else same < nearest):
            wrong.append(f"frame {i}: {same:.3f} from its own, {nearest:.3f} from a neighbour")
    assert not wrong, "frames that are not the single pass's: " + "; ".join(wrong[:8]) + f" ({len(wrong)} in all)"


def _expected_lengths(plan: Plan, total: int) -> list[int]:
    return [max(0, min(total, end if end is not None else total) - start) for start, end in plan]


# ---- chunks against the single pass --------------------------------------------------------------------------

CHUNKINGS = [
    pytest.param("25", 37, id="25fps-cut-on-a-boundary-exactly-3-chunks"),
    pytest.param("25", 36, id="25fps-cut-one-frame-after-a-boundary"),
    pytest.param("25", 38, id="25fps-cut-one-frame-before-a-boundary"),
    pytest.param("25", 200, id="25fps-shorter-than-one-chunk"),
    pytest.param("25", 55, id="25fps-last-chunk-of-one-frame"),
    pytest.param("30", 37, id="30fps"),
    pytest.param("29.97", 33, id="29.97fps-second-cut-on-a-boundary"),
    pytest.param("29.97-long", DEFAULT_NTSC_CHUNK, id="29.97fps-default-chunk-length"),
    pytest.param("60", 37, id="60fps"),
    pytest.param("portrait", 37, id="portrait-rotated"),
    pytest.param("vfr", 50, id="vfr"),
    pytest.param("4k", 20, id="4k-cut-on-a-boundary"),
]


@pytest.mark.parametrize(("name", "chunk_frames"), CHUNKINGS)
def test_chunks_are_the_single_pass(name: str, chunk_frames: int, lab: Lab) -> None:
    source, single = lab.source(name), lab.single(name)
    assert (single.info.frame_count, (single.info.width, single.info.height)) == (source.frames, source.size)

    run = lab.chunked(name, chunk_frames)

    assert [chunk.frames for chunk in run.chunks] == _expected_lengths(run.plan, source.frames)
    for chunk in run.chunks:
        assert chunk.info is not None and chunk.path is not None and len(chunk.scores) == chunk.frames
        assert (chunk.info.fps, chunk.info.width, chunk.info.height) == (
            single.info.fps,
            single.info.width,
            single.info.height,
        )
        assert not chunk.info.has_audio  # audio is encoded once, at the join

    scanned = [cut.frame for cut in replay_cuts(run.scores, fps=single.info.fps, finished=True)]
    assert scanned == list(source.cuts)
    detected = detect_cuts(single.path, expected_frame_count=single.info.frame_count, fps=single.info.fps)
    assert scanned == [cut.frame for cut in detected], "the chunk scan and the single pass cut differently"

    _assert_same_frames(lab.chunk_frames(name, chunk_frames), lab.gray(single.path), duplicates=source.vfr)


@pytest.mark.parametrize(("name", "chunk_frames"), [("25", 36), ("25", 37), ("25", 38), ("vfr", 50)])
def test_the_scan_does_not_depend_on_the_chunking(name: str, chunk_frames: int, lab: Lab) -> None:
    """A chunk's scores, primed with the frame before it, are bit for bit those of one scan of the whole."""
    whole = lab.chunked(name, 200)  # longer than either video
    assert len(whole.chunks) == 1
    assert lab.chunked(name, chunk_frames).scores == whole.scores
    assert len(whole.scores) == lab.source(name).frames


def test_a_chunk_the_source_ends_inside_is_short_and_one_past_the_end_is_empty(lab: Lab, tmp_path: Path) -> None:
    source, single = lab.source("30"), lab.single("30")
    fps, size = single.info.fps, analysis_size(single.info.width, single.info.height)

    def chunk(start: int, end: int | None, work: str) -> EncodedChunk:
        return encode_chunk(
            str(source.path),
            tmp_path / work,
            fps=fps,
            start_frame=start,
            end_frame=end,
            analysis_size=size,
            detector="adaptive",
            crf=CRF,
            timeout=TIMEOUT,
        )

    short = chunk(100, 150, "short")
    assert short.frames == 11 == len(short.scores) and short.info is not None and short.info.frame_count == 11
    assert short.path is not None
    _assert_same_frames(lab.gray(short.path), lab.gray(single.path)[100:])
    for start, end in ((111, 150), (111, None), (200, None)):
        empty = chunk(start, end, f"empty-{start}-{end}")
        assert empty == EncodedChunk(None, 0, [], None)
        assert not any((tmp_path / f"empty-{start}-{end}").iterdir()), "no file may be left behind"


# ---- the join -----------------------------------------------------------------------------------------------

JOINS = [param for param in CHUNKINGS if param.id != "25fps-last-chunk-of-one-frame"]


@pytest.mark.parametrize(("name", "chunk_frames"), JOINS)
def test_the_joined_proxy_is_the_single_pass(name: str, chunk_frames: int, lab: Lab) -> None:
    single = lab.single(name)
    run = lab.chunked(name, chunk_frames)

    joined = lab.join(name, chunk_frames)

    assert joined.path.is_file() and not list(joined.path.parent.glob("*.partial"))
    ours, theirs = joined.info, single.info
    assert (ours.fps, ours.frame_count, ours.width, ours.height, ours.has_audio) == (
        theirs.fps,
        theirs.frame_count,
        theirs.width,
        theirs.height,
        theirs.has_audio,
    )
    # Frame n at n/fps, the rule the whole app relies on (stream copy seeks by it), across every join.
    expected_times = [Fraction(n) / theirs.fps for n in range(theirs.frame_count)]
    assert _video_times(single.path) == expected_times
    times = _video_times(joined.path)
    off = [
        f"{n}: {float(t - e) * 1000:+.3f} ms"
        for n, (t, e) in enumerate(zip(times, expected_times, strict=True))
        if t != e
    ]
    assert not off, f"{len(off)} frames are not at n/fps, from frame {off[0]}; the last {off[-1]}"

    # Stream copy: the joined proxy decodes to exactly its chunks' frames.
    assert np.array_equal(lab.gray(joined.path), lab.chunk_frames(name, chunk_frames))

    if theirs.has_audio:
        # The audio is encoded once from the source, as in the single pass: sample-identical, joins included.
        (samples, rate), (reference, reference_rate) = _decode_pcm(joined.path), _decode_pcm(single.path)
        assert rate == reference_rate and samples.shape == reference.shape
        for start, _ in run.plan[1:]:
            at = round(Fraction(start) / theirs.fps * rate)
            window = slice(max(0, at - 4096), at + 4096)
            assert np.array_equal(samples[window], reference[window]), f"audio differs around the join at {start}"
        assert np.array_equal(samples, reference)


@pytest.mark.parametrize(
    ("name", "chunk_frames"), [("25", 37), ("29.97", 33), ("29.97-long", DEFAULT_NTSC_CHUNK), ("vfr", 50), ("4k", 20)]
)
def test_a_clip_copied_from_the_joined_proxy_has_exactly_its_frames(
    name: str, chunk_frames: int, lab: Lab, tmp_path: Path
) -> None:
    """Export and temp clips cut the joined proxy by time (frame n at n/fps), starting after a join."""
    joined = lab.join(name, chunk_frames)
    start = lab.chunked(name, chunk_frames).plan[1][0] + 3
    end = min(start + 10, joined.info.frame_count)
    clip = tmp_path / "clip.mp4"
    copy_segment(
        joined.path,
        clip,
        start_frame=start,
        end_frame=end,
        fps=joined.info.fps,
        frame_count=joined.info.frame_count,
        timeout=TIMEOUT,
    )
    frames = lab.gray(clip)
    assert len(frames) == end - start, f"frames [{start}, {end}) decode to {len(frames)} frames"
    assert np.array_equal(frames, lab.gray(joined.path)[start:end])


# ---- clips cut from the chunk files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "first_chunk", "audio"),
    [
        pytest.param(37, 80, 1, True, id="from-a-chunk-start-across-a-boundary"),
        pytest.param(30, 50, 0, True, id="inside-a-chunk-across-a-boundary"),
        pytest.param(40, 80, 1, False, id="inside-a-chunk-across-a-boundary-no-audio"),
    ],
)
def test_a_clip_from_the_chunks_is_the_clip_from_the_single_pass(
    start: int, end: int, first_chunk: int, audio: bool, lab: Lab, tmp_path: Path
) -> None:
    """What the review player gets while a video is still encoding: the chunks holding the clip, by copy."""
    name, chunk_frames = "25", 37
    source, single, run = lab.source(name), lab.single(name), lab.chunked(name, chunk_frames)
    fps = single.info.fps
    holding = [
        (path, s) for path, (s, e) in zip(run.paths, run.plan, strict=True) if s < end and (e is None or e > start)
    ]
    assert holding[0][1] == first_chunk * chunk_frames and len(holding) == 2
    listing = write_concat_list(
        [path for path, _ in holding], tmp_path / "clip.ffconcat", inpoint=chunk_inpoint(start, holding[0][1], fps)
    )

    clip = tmp_path / "clip.mp4"
    count = copy_chunked_segment(
        listing,
        str(source.path) if audio else None,
        clip,
        offset_frames=holding[0][1],
        start_frame=start,
        end_frame=end,
        fps=fps,
        timeout=TIMEOUT,
    )
    reference = tmp_path / "reference.mp4"
    copy_segment(single.path, reference, start_frame=start, end_frame=end, fps=fps, frame_count=None, timeout=TIMEOUT)

    assert count == end - start
    frames = lab.gray(clip)
    assert len(frames) == end - start, f"the clip decodes to {len(frames)} frames, not {end - start}"
    assert np.array_equal(frames, lab.chunk_frames(name, chunk_frames)[start:end]), "not the chunks' frames"
    _assert_same_frames(frames, lab.gray(reference))
    info = probe(clip, timeout=30)
    assert info.has_audio is audio
    if audio:
        samples, rate = _decode_pcm(clip)
        clip_samples = Fraction(end - start) / fps * rate
        assert abs(len(samples) - clip_samples) <= 1024, f"{len(samples)} samples for {clip_samples}"


# ---- the source's tail --------------------------------------------------------------------------------------


def test_check_tail_catches_a_cut_short_faststart_mp4(
    truncated_faststart: Path, small_source: synth.SynthVideo, tmp_path: Path
) -> None:
    check_tail(str(small_source.path), probe(small_source.path, timeout=30), timeout=60)  # complete: passes
    info = probe(truncated_faststart, timeout=30)
    assert info.duration_seconds == pytest.approx(small_source.frame_count / 25)  # the index promises it all
    with pytest.raises(UnsupportedMedia) as error:
        check_tail(str(truncated_faststart), info, timeout=60)
    assert error.value.reason == "truncated"
    assert str(error.value).startswith("The file is incomplete: its last seconds (from 3.6 of 5.6 s) could not be")
    # A cut-short mp4 whose index comes last never gets this far: the probe already refuses it.
    with pytest.raises(UnsupportedMedia, match="The MP4 file is incomplete"):
        probe(synth.make_truncated_mp4(small_source.path, tmp_path / "moov_last.mp4"), timeout=30)
