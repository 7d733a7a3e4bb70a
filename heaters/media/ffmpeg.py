"""Pure ffmpeg argument builders and the `-progress` parser: no I/O here, so list-equality tests pin them.

Each builder returns a whole argv (starting with "ffmpeg") for `heaters.media.tools.run_tool`. Frame
math uses `Fraction` fps: 30000/1001 is not 29.97, and a float drifts a frame within minutes.

Why the proxy looks the way it does (reference §8 and §11.1 #10 list what the original got wrong):
* all-intra (`-g 1 -keyint_min 1 -sc_threshold 0`): every frame is a keyframe, so stream copy can start at
  any frame and the browser can step frame by frame;
* constant frame rate (`-fps_mode cfr -r <fps>`): frame n is at time n/fps, the rule the whole app uses;
* at most 720p for its orientation (long side <= 1280, short side <= 720; portrait phone video stays
  720x1280 instead of shrinking to 404x720), never upscaled, even dimensions (`force_divisible_by=2`,
  which libx264 needs for 4:2:0); ffmpeg auto-rotates, so a phone's rotation metadata becomes real pixels;
* High profile, level 4.2: allows 720p up to 145 fps (level 3.1 stops at 30 fps); every browser decodes it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

FFMPEG = "ffmpeg"

# Quiet, non-interactive, overwrite: every command starts with these.
_COMMON = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
_FASTSTART = ["-movflags", "+faststart"]
_MAP_VIDEO_AND_AUDIO = ["-map", "0:v:0", "-map", "0:a:0?"]  # the `?` makes a silent video fine

PROXY_MAX_LONG_SIDE = 1280
PROXY_MAX_SHORT_SIDE = 720
PROXY_MAX_FPS = Fraction(60)
# Rates a proxy snaps to when the source's rate is within 0.05 % (phones report 30000/1001 as 2997/100);
# 30 and 30000/1001 differ by 0.1 %, so the nearest one wins.
STANDARD_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)

PathLike = str | os.PathLike[str]


def _rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def seconds_arg(seconds: Fraction) -> str:
    """Exact-to-the-microsecond decimal for -ss/-t (ffmpeg parses microseconds; no float rounding)."""
    if seconds < 0:
        raise ValueError("time must not be negative")
    micros = round(seconds * 1_000_000)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def frame_time(frame: int, fps: Fraction) -> Fraction:
    """Start time of `frame` in a CFR stream: the app-wide rule time = frame / fps."""
    return Fraction(frame) / fps


def _check_fps(fps: Fraction) -> Fraction:
    fps = Fraction(fps)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return fps


def proxy_fps(source_fps: Fraction) -> Fraction:
    """The proxy's constant rate for a source rate: halved until <= 60, then snapped to a standard rate.

    A review tool gains nothing above 60 fps, and halving keeps the frame cadence regular (120 -> 60,
    100 -> 50). Odd rates without a close standard (e.g. 1800/89 from a VFR file) are kept as they are.
    """
    fps = _check_fps(source_fps)
    while fps > PROXY_MAX_FPS:
        fps /= 2
    nearest = min(STANDARD_RATES, key=lambda standard: abs(fps - standard))
    return nearest if abs(fps - nearest) <= nearest / 2000 else fps


def proxy_fps_filter(fps: Fraction) -> str:
    """Frame n is the source frame on screen at the file's start + n/fps: the single pass's rule and every
    chunk's (`chunk_args`), so both put the same source frame on each proxy frame, VFR sources included."""
    return f"fps=fps={_rate(_check_fps(fps))}:start_time=0:round=near"


def proxy_scale_filter(max_long: int = PROXY_MAX_LONG_SIDE, max_short: int = PROXY_MAX_SHORT_SIDE) -> str:
    """Fit inside max_long x max_short for the frame's orientation, never upscale, round down to even."""
    w = f"'if(gte(iw,ih),min({max_long},iw),min({max_short},iw))'"
    h = f"'if(gte(iw,ih),min({max_short},ih),min({max_long},ih))'"
    return f"scale=w={w}:h={h}:force_original_aspect_ratio=decrease:force_divisible_by=2"


# x264's preset for the all-intra proxy, chosen from bench/proxy_presets.py (docs/benchmarks.md): veryfast
# encodes 1.34x as fast as fast at the same size (1.002x) and SSIM 0.9854 against 0.9861. All-intra leaves
# x264 nothing to gain from the slower presets' motion search; ultrafast doubles the size.
PROXY_PRESET = "veryfast"


def proxy_args(
    src: PathLike,
    dst: PathLike,
    *,
    fps: Fraction,
    crf: int = 28,
    preset: str = PROXY_PRESET,
    audio_bitrate: str = "96k",
) -> list[str]:
    """All-intra, CFR, <=720p, even-sized H.264/AAC proxy; progress records go to stderr."""
    return [
        FFMPEG,
        *_COMMON,
        "-i",
        os.fspath(src),
        *_MAP_VIDEO_AND_AUDIO,
        "-vf",
        f"{proxy_fps_filter(fps)},{proxy_scale_filter()}",
        "-fps_mode",
        "cfr",
        "-r",
        _rate(_check_fps(fps)),
        *_x264_intra(crf, preset),
        "-c:a",
        "aac",
        "-b:a",
        audio_bitrate,
        "-max_muxing_queue_size",
        "4096",  # sources whose audio starts late would otherwise abort
        *_FASTSTART,
        "-f",
        "mp4",
        "-progress",
        "pipe:2",
        os.fspath(dst),
    ]


def _x264_intra(crf: int, preset: str) -> list[str]:
    """The proxy's video encoder settings, one definition for the single pass and every chunk."""
    return [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
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
    ]


def chunk_args(
    src: PathLike,
    dst: PathLike,
    *,
    fps: Fraction,
    start_frame: int,
    end_frame: int | None,
    analysis_size: tuple[int, int],
    crf: int = 28,
    preset: str = PROXY_PRESET,
    scan: bool = True,
) -> list[str]:
    """Proxy frames [start_frame, end_frame) (None: to the end) as video-only all-intra H.264, plus, on
    stdout, the same frames (and the one before, to compare the first with) as raw BGR at `analysis_size`
    for the scene scorer: one decode feeds both.

    Frame n of the proxy is the source frame shown at the file's start + n/fps, the rule of the `fps`
    filter (`start_time=0`, nearest rounding), whichever chunk it is encoded in:
    * `-ss T -itsoffset T` with the same T: the seek lands on the keyframe at or before T
      (`-noaccurate_seek`, so every frame from there is decoded and none is dropped before the filter),
      and the two offsets cancel, so timestamps stay those of a single pass from the start of the file;
    * the `fps` filter therefore puts each source frame on the same output frame as a single pass would
      (it pads the frames before the first decoded one, which the `trim` then drops);
    * `trim` by output frame number (start_pts/end_pts in the 1/fps time base) keeps exactly the chunk;
      `-frames:v` stops the encoder, and with it the decoding, at the chunk's end.

    `scan=False` leaves the scorer's stream out (bench/chunk_scan.py measures what it costs).
    """
    fps = _check_fps(fps)
    if start_frame < 0 or (end_frame is not None and end_frame <= start_frame):
        raise ValueError(f"need 0 <= start_frame < end_frame, got [{start_frame}, {end_frame})")
    seek = seconds_arg(frame_time(start_frame, fps))
    first = max(0, start_frame - 1)  # the scorer's reference frame comes first
    end = f":end_pts={end_frame}" if end_frame is not None else ""
    width, height = analysis_size
    graph = (
        f"[0:v:0]{proxy_fps_filter(fps)},trim=start_pts={first}{end},setpts=PTS-STARTPTS,"
        f"{proxy_scale_filter()},split=2[whole][small];"
        f"[whole]trim=start_pts={start_frame - first},setpts=PTS-STARTPTS[chunk];"
        f"[small]scale={width}:{height}:flags=fast_bilinear,format=bgr24[scan]"
    )
    if not scan:
        graph = (
            f"[0:v:0]{proxy_fps_filter(fps)},trim=start_pts={start_frame}{end},"
            f"setpts=PTS-STARTPTS,{proxy_scale_filter()}[chunk]"
        )
    scan_output = ["-map", "[scan]", "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"] if scan else []
    frames = ["-frames:v", str(end_frame - start_frame)] if end_frame is not None else []
    return [
        FFMPEG,
        *_COMMON,
        "-noaccurate_seek",
        "-ss",
        seek,
        "-itsoffset",
        seek,
        "-i",
        os.fspath(src),
        "-filter_complex",
        graph,
        "-map",
        "[chunk]",
        "-an",
        *_x264_intra(crf, preset),
        "-fps_mode",
        "passthrough",
        "-r",
        _rate(fps),
        *frames,
        "-movie_timescale",
        str(track_timescale(fps)),
        *_FASTSTART,
        "-f",
        "mp4",
        "-progress",
        "pipe:2",
        os.fspath(dst),
        *scan_output,
    ]


def tail_decode_args(src: PathLike, *, start_seconds: float) -> list[str]:
    """Decode the video from `start_seconds` to the end and discard it; `-progress` counts the frames."""
    return [
        FFMPEG,
        *_COMMON,
        "-ss",
        f"{start_seconds:.6f}",
        "-i",
        os.fspath(src),
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-progress",
        "pipe:2",
        "-",
    ]


def join_args(concat_list: PathLike, audio_source: PathLike, dst: PathLike, *, audio_bitrate: str = "96k") -> list[str]:
    """The proxy from its chunks (stream copy, listed in a concat file) and the source's audio, encoded
    here once for the whole file: AAC encoded per chunk would prime (and pad) at every join.

    Both inputs start at the file's start, as in a single pass, so the audio keeps its offset."""
    return [
        FFMPEG,
        *_COMMON,
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        os.fspath(concat_list),
        "-i",
        os.fspath(audio_source),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0?",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        audio_bitrate,
        "-max_muxing_queue_size",
        "4096",
        *_FASTSTART,
        "-f",
        "mp4",
        "-progress",
        "pipe:2",
        os.fspath(dst),
    ]


def chunk_inpoint(start_frame: int, chunk_start: int, fps: Fraction) -> str:
    """Where in its chunk a clip starts, for the concat list's `inpoint`: the frame's exact start."""
    return seconds_arg(frame_time(start_frame - chunk_start, _check_fps(fps)))


def track_timescale(fps: Fraction) -> int:
    """The MP4 muxer's timescale for a video track at `fps` (its time base's denominator, doubled up to at
    least 10000). Chunks must use it as their movie timescale too: with the default (1000) each chunk's
    length is rounded up to a millisecond, and the concat demuxer would start every next chunk that late."""
    scale = _check_fps(fps).numerator
    while scale < 10000:
        scale *= 2
    return scale


def chunked_segment_args(
    concat_list: PathLike,
    audio_source: PathLike | None,
    dst: PathLike,
    *,
    offset_frames: int,
    start_frame: int,
    end_frame: int,
    fps: Fraction,
    audio_bitrate: str = "96k",
) -> list[str]:
    """Frames [start_frame, end_frame) of a proxy not yet joined: video copied from the chunks in
    `concat_list`, audio encoded from the source's span.

    The list starts the first chunk at the clip's first frame (`chunk_inpoint`); the audio is cut from the
    source (accurate seek, so sample-exact at the clip's start): the whole-file audio exists only once the
    proxy is joined, and a few seconds of AAC cost next to nothing.
    """
    fps = _check_fps(fps)
    if not offset_frames <= start_frame < end_frame:
        raise ValueError(f"need {offset_frames} <= start_frame < end_frame, got [{start_frame}, {end_frame})")
    count = end_frame - start_frame
    audio = (
        [
            "-ss",
            seconds_arg(frame_time(start_frame, fps)),
            "-t",
            seconds_arg(Fraction(count) / fps),
            "-i",
            os.fspath(audio_source),
        ]
        if audio_source is not None
        else []
    )
    return [
        FFMPEG,
        *_COMMON,
        "-progress",
        "pipe:2",
        "-f",
        "concat",
        "-safe",
        "0",
        "-protocol_whitelist",
        "file,http,https,tcp,tls,crypto",  # the list names the chunks by signed URL
        "-i",
        os.fspath(concat_list),
        *audio,
        "-map",
        "0:v:0",
        *(["-map", "1:a:0?"] if audio_source is not None else []),
        "-frames:v",
        str(count),
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        audio_bitrate,
        *_FASTSTART,
        "-f",
        "mp4",
        os.fspath(dst),
    ]


def master_args(
    src: PathLike, dst: PathLike, *, crf: int = 18, preset: str = "medium", audio_bitrate: str = "256k"
) -> list[str]:
    """Archival H.264 High at full size, normal GOP with B-frames; the level is left to x264 (4K needs 5.x).

    Odd sizes lose one edge pixel row/column (crop, not a resample), since 4:2:0 needs even dimensions.
    """
    return [
        FFMPEG,
        *_COMMON,
        "-i",
        os.fspath(src),
        *_MAP_VIDEO_AND_AUDIO,
        "-vf",
        "crop=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
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
        audio_bitrate,
        "-max_muxing_queue_size",
        "4096",
        *_FASTSTART,
        "-f",
        "mp4",
        "-progress",
        "pipe:2",
        os.fspath(dst),
    ]


def stream_copy_args(
    src: PathLike,
    dst: PathLike,
    *,
    start_frame: int,
    end_frame: int,
    fps: Fraction,
    frame_count: int | None = None,
    progress: bool = False,
) -> list[str]:
    """Frames [start_frame, end_frame) of an all-intra CFR proxy, copied without re-encoding.

    `-ss` before `-i` seeks to the last keyframe at or before the time, which in an all-intra file is
    the frame itself; copy mode keeps that packet, so the time must be the frame's exact start (never
    half a frame early). `-frames:v` stops the video exactly and `-t` stops the audio with it.

    Timestamps: the video's first frame lands at exactly 0, so clip time t shows frame
    start_frame + round(t * fps). The audio packet that contains the start time begins up to one AAC frame
    (21 ms) earlier; `-avoid_negative_ts disabled` lets the mp4 muxer keep that pre-roll as an audio edit
    list. `make_zero` would instead shift everything by the pre-roll, starting the video up to 21 ms late:
    more than half a frame at 30 fps and up, i.e. an off-by-one frame in the review player.

    A start past the end of the file silently copies the last frame, so pass `frame_count` to have that
    rejected here. `progress` adds `-progress pipe:2`, whose last block counts the frames ffmpeg wrote: a
    check of the result that needs no second process (an ffprobe costs as much as the copy itself).
    """
    fps = _check_fps(fps)
    if not 0 <= start_frame < end_frame:
        raise ValueError(f"need 0 <= start_frame < end_frame, got [{start_frame}, {end_frame})")
    if frame_count is not None and end_frame > frame_count:
        raise ValueError(f"end_frame {end_frame} is past the video's {frame_count} frames")
    count = end_frame - start_frame
    return [
        FFMPEG,
        *_COMMON,
        *(["-progress", "pipe:2"] if progress else []),
        "-ss",
        seconds_arg(frame_time(start_frame, fps)),
        "-i",
        os.fspath(src),
        *_MAP_VIDEO_AND_AUDIO,
        "-frames:v",
        str(count),
        "-t",
        seconds_arg(Fraction(count) / fps),
        "-c",
        "copy",
        "-avoid_negative_ts",
        "disabled",
        *_FASTSTART,
        "-f",
        "mp4",
        os.fspath(dst),
    ]


def single_frame_args(
    src: PathLike, dst: PathLike, *, frame: int, fps: Fraction, quality: int = 2, max_width: int | None = None
) -> list[str]:
    """One JPEG of exactly `frame` (any source, long-GOP too).

    Decoding seeks are accurate: ffmpeg decodes from the previous keyframe and drops frames before the
    seek time. Seeking half a frame early makes that robust to timestamp rounding in either direction.
    A frame past the end would make ffmpeg write nothing and exit 0; `-abort_on empty_output` makes it fail.
    """
    fps = _check_fps(fps)
    if frame < 0:
        raise ValueError("frame must not be negative")
    seek = max(Fraction(0), (Fraction(frame) - Fraction(1, 2)) / fps)
    scale = ["-vf", f"scale=w='min({max_width},iw)':h=-2"] if max_width else []
    return [
        FFMPEG,
        *_COMMON,
        "-ss",
        seconds_arg(seek),
        "-i",
        os.fspath(src),
        "-map",
        "0:v:0",
        *scale,
        "-frames:v",
        "1",
        "-q:v",
        str(quality),
        "-abort_on",
        "empty_output",
        "-f",
        "image2",
        "-update",
        "1",
        os.fspath(dst),
    ]


# ---- `-progress pipe:2` parsing -------------------------------------------------------------------------

PROGRESS_KEYS = frozenset(
    {
        "frame",
        "fps",
        "bitrate",
        "total_size",
        "out_time_us",
        "out_time_ms",
        "out_time",
        "dup_frames",
        "drop_frames",
        "speed",
        "progress",
    }
)
_PROGRESS_LINE = re.compile(r"^(?P<key>[a-z0-9_]+)=(?P<value>.*)$")


@dataclass(frozen=True)
class ProgressUpdate:
    """One `-progress` block: ffmpeg writes a block of key=value lines ending with progress=continue|end."""

    percent: float | None
    frame: int | None
    out_time_seconds: float | None
    done: bool


def is_progress_line(line: str) -> bool:
    match = _PROGRESS_LINE.match(line.strip())
    return match is not None and (match["key"] in PROGRESS_KEYS or match["key"].startswith("stream_"))


class ProgressParser:
    """Turns `-progress` lines into a percent of `total_frames` (exact for CFR output) or `total_seconds`.

    Use an instance as run_tool's `on_stderr_line` for every command built with `-progress pipe:2`: it
    returns True for progress lines so they stay out of the error tail (otherwise a failure's message would
    be "speed=2x | progress=end"), and calls `on_progress(percent)` at most once per `step` percent and
    always at the end. Without totals it only filters, and reports 100 at the end.
    """

    def __init__(
        self,
        *,
        total_frames: int | None = None,
        total_seconds: float | None = None,
        on_progress: Callable[[float], None] | None = None,
        step: float = 1.0,
    ) -> None:
        self.total_frames = total_frames
        self.total_seconds = total_seconds
        self.on_progress = on_progress
        self.step = step
        self.percent: float | None = None
        self.frames: int | None = None  # frames written, from the last block
        self.done = False
        self._block: dict[str, str] = {}
        self._reported: float | None = None

    def __call__(self, line: str) -> bool:
        if not is_progress_line(line):
            return False
        self.feed(line)
        return True

    def feed(self, line: str) -> ProgressUpdate | None:
        """Consume one line; returns the update when it closed a block, else None."""
        if not is_progress_line(line):
            return None
        key, _, value = line.strip().partition("=")
        self._block[key] = value.strip()
        if key != "progress":
            return None
        update = self._finish_block(done=value.strip() == "end")
        self._block = {}
        self._report(update)
        return update

    def _finish_block(self, *, done: bool) -> ProgressUpdate:
        frame = _int_or_none(self._block.get("frame"))
        if frame is not None:
            self.frames = frame
        micros = _int_or_none(self._block.get("out_time_us"))
        seconds = micros / 1_000_000 if micros is not None and micros >= 0 else None
        percent: float | None = None
        if self.total_frames and frame is not None:
            percent = 100.0 * frame / self.total_frames
        elif self.total_seconds and seconds is not None:
            percent = 100.0 * seconds / self.total_seconds
        if done:
            percent = 100.0
        if percent is not None:
            percent = min(100.0, max(0.0, percent))
            self.percent = percent if self.percent is None else max(self.percent, percent)
        self.done = self.done or done
        return ProgressUpdate(self.percent, frame, seconds, done)

    def _report(self, update: ProgressUpdate) -> None:
        if self.on_progress is None or update.percent is None:
            return
        due = self._reported is None or update.done or update.percent - self._reported >= self.step
        if due and update.percent != self._reported:
            self._reported = update.percent
            self.on_progress(update.percent)


def parse_progress(
    lines: Iterable[str], *, total_frames: int | None = None, total_seconds: float | None = None
) -> list[ProgressUpdate]:
    """All blocks in `lines` (other stderr lines are skipped): the pure form of `ProgressParser`."""
    parser = ProgressParser(total_frames=total_frames, total_seconds=total_seconds)
    updates = [parser.feed(line) for line in lines]
    return [u for u in updates if u is not None]


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # ffmpeg writes N/A before the first frame
