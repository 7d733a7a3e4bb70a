"""Scene-cut detection on the proxy with PySceneDetect 0.7.2 detectors: returns boundaries, never segments.

Why our own frame loop instead of `SceneManager.detect_scenes`: in 0.7 SceneManager numbers frames from
OpenCV's millisecond timestamps (`round(seconds * fps)`), silently skips frames whose size looks wrong and
stops quietly when decoding fails. Here frame i is simply the i-th decoded frame of the all-intra CFR proxy
(the same numbering ffprobe and stream copy use), the frames read are counted, and any detector or decoder
exception is raised as `SceneDetectionError`, never turned into "no cuts" (reference §3.7, §11.1 #8).
We still feed the detectors exactly as SceneManager does (same auto-downscale to ~256 px, same
interpolation, `post_process` at the end); a test checks both give the same cuts.

Frame numbers: every detector here reports the FIRST frame of the new scene (the frame whose difference
from its predecessor is large). AdaptiveDetector decides `window_width` frames late but emits the target
frame itself, so no offset needs correcting; the end-to-end tests pin this on known cuts.

Frame count reconciliation: the decoder must read exactly `expected_frame_count` frames (ffprobe's count of
the proxy) give or take `frame_count_tolerance` (default 0, since for our own proxy they agree). A
shortfall means the tail was never analysed; an excess means the numbering disagrees with ffprobe. Either
raises. Within tolerance, cuts at or beyond the expected count are dropped.

Scores are the detector's own statistic at the cut frame, larger = stronger: AdaptiveDetector's
`adaptive_ratio`, ContentDetector's `content_val`, and 1 - histogram correlation for HistogramDetector
(its raw metric is a correlation, where smaller means a stronger cut).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import cv2
from scenedetect import FrameTimecode, StatsManager
from scenedetect.common import framerate_to_fraction
from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector
from scenedetect.scene_manager import compute_downscale_factor

from heaters.errors import PermanentError

DetectorName = Literal["adaptive", "content", "histogram"]
DETECTORS: tuple[DetectorName, ...] = ("adaptive", "content", "histogram")
ProgressCallback = Callable[[int, int], None]  # (frames read, expected frames)


class SceneDetectionError(PermanentError):
    """Detection could not run over the whole proxy; no cut list is better than a wrong one."""


class DetectedCut(NamedTuple):
    """A boundary: `frame` is the first frame of the new segment (> 0); `score` is how strong it was.

    A (frame, score) tuple, so `heaters.clips.segments.merge_short_segments` takes a list of them as is.
    """

    frame: int
    score: float


def make_detector(detector: DetectorName, *, threshold: float | None, min_scene_len_frames: int) -> Any:
    """A PySceneDetect detector; `threshold=None` keeps the library's tuned default."""
    if detector == "adaptive":
        if threshold is None:
            return AdaptiveDetector(min_scene_len=min_scene_len_frames)
        return AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_scene_len_frames)
    if detector == "content":
        if threshold is None:
            return ContentDetector(min_scene_len=min_scene_len_frames)
        return ContentDetector(threshold=threshold, min_scene_len=min_scene_len_frames)
    if detector == "histogram":
        if threshold is None:
            return HistogramDetector(min_scene_len=min_scene_len_frames)
        return HistogramDetector(threshold=threshold, min_scene_len=min_scene_len_frames)
    raise ValueError(f"unknown scene detector {detector!r}; choose one of {', '.join(DETECTORS)}")


def _score_key(detector: DetectorName, instance: Any) -> str:
    metrics: list[str] = instance.get_metrics()
    if detector == "adaptive":
        return metrics[-1]  # adaptive_ratio (w=N): appended after ContentDetector's metrics
    if detector == "content":
        return str(ContentDetector.FRAME_SCORE_KEY)
    return metrics[0]  # "hist_diff [bins=N]"


class _RecentScores(StatsManager):
    """A StatsManager that keeps only the score metric of recent frames.

    Detectors emit a cut at most `event_buffer_length` frames behind the frame being read, so older
    entries are never needed; a full StatsManager would hold every metric of every frame (~100 MB for a
    three-hour video). Attaching any StatsManager also makes ContentDetector compute edge maps for its
    statistics: a small cost at the ~256 px analysis size.
    """

    def __init__(self, key: str, horizon: int) -> None:
        super().__init__()
        self.key = key
        self.horizon = horizon
        self.scores: dict[int, float] = {}

    def set_metrics(self, timecode: Any, metric_kv_dict: dict[str, Any]) -> None:
        if self.key in metric_kv_dict:
            frame = int(getattr(timecode, "frame_num", timecode))
            self.scores[frame] = float(metric_kv_dict[self.key])

    def forget_before(self, frame: int) -> None:
        for old in [f for f in self.scores if f < frame - self.horizon]:
            del self.scores[old]


def detect_cuts(
    path: str | os.PathLike[str],
    *,
    detector: DetectorName = "adaptive",
    threshold: float | None = None,
    min_scene_len_frames: int = 15,
    expected_frame_count: int,
    fps: Fraction | None = None,
    frame_count_tolerance: int = 0,
    on_progress: ProgressCallback | None = None,
) -> list[DetectedCut]:
    """Cut frames of the proxy at `path`, sorted, each in (0, expected_frame_count).

    `fps` (the proxy's, from ffprobe) only matters for detectors' time arithmetic; it defaults to what
    OpenCV reports. `on_progress` may raise to abort (for example, past a deadline).
    """
    if expected_frame_count < 1:
        raise ValueError("expected_frame_count must be positive")
    instance = make_detector(detector, threshold=threshold, min_scene_len_frames=min_scene_len_frames)
    capture = cv2.VideoCapture(os.fspath(path))
    if not capture.isOpened():
        raise SceneDetectionError(f"OpenCV could not open {os.fspath(path)!r} for scene detection")
    try:
        rate = Fraction(fps) if fps else framerate_to_fraction(capture.get(cv2.CAP_PROP_FPS) or 25.0)
        key = _score_key(detector, instance)
        scores = _RecentScores(key, horizon=int(instance.event_buffer_length) + 2)
        instance.stats_manager = scores
        found, frames_read = _run(capture, instance, scores, rate, expected_frame_count, on_progress)
    finally:
        capture.release()

    if abs(frames_read - expected_frame_count) > frame_count_tolerance:
        raise SceneDetectionError(
            f"The decoder read {frames_read} frames but ffprobe counted {expected_frame_count}; "
            "the proxy is damaged or was not analysed to the end, so its cuts cannot be trusted."
        )
    cuts = {cut.frame: cut for cut in found if 0 < cut.frame < expected_frame_count}
    return sorted(cuts.values())


def _run(
    capture: Any,
    instance: Any,
    scores: _RecentScores,
    rate: Fraction,
    expected: int,
    on_progress: ProgressCallback | None,
) -> tuple[list[DetectedCut], int]:
    """Feed every decoded frame to the detector; returns the cuts with scores and the frames read."""
    found: list[DetectedCut] = []
    frame_index = 0
    first_shape: tuple[int, ...] | None = None
    downscale = 1.0
    report_every = max(1, expected // 100)

    def collect(timecodes: list[Any]) -> None:
        for timecode in timecodes:
            frame = int(timecode.frame_num)
            score = scores.scores.get(frame)
            found.append(DetectedCut(frame, _normalise(score, scores.key)))

    while True:
        try:
            ok, image = capture.read()
            if not ok:
                break
            if first_shape is None:
                first_shape = image.shape
                downscale = compute_downscale_factor(max(image.shape[1], image.shape[0]))
            elif image.shape != first_shape:
                raise SceneDetectionError(
                    f"Frame {frame_index} is {image.shape[1]}x{image.shape[0]}, unlike the first frame "
                    f"({first_shape[1]}x{first_shape[0]}); the proxy is damaged."
                )
            if downscale > 1.0:
                size = (max(1, round(image.shape[1] / downscale)), max(1, round(image.shape[0] / downscale)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            collect(instance.process_frame(FrameTimecode(frame_index, rate), image))
            scores.forget_before(frame_index)
        except SceneDetectionError:
            raise
        except Exception as exc:  # decoder or detector: fail loudly, never "zero cuts"
            raise SceneDetectionError(f"Scene detection failed at frame {frame_index}: {exc!r}") from exc
        frame_index += 1
        if on_progress is not None and frame_index % report_every == 0:
            on_progress(frame_index, expected)  # outside the guard: the caller's own exception passes
    if frame_index:
        try:
            collect(instance.post_process(FrameTimecode(frame_index - 1, rate)))
        except Exception as exc:
            raise SceneDetectionError(f"Scene detection failed after the last frame: {exc!r}") from exc
    if on_progress is not None:
        on_progress(frame_index, expected)
    return found, frame_index


def _normalise(score: float | None, key: str) -> float:
    """Larger is a stronger cut for every detector; a missing statistic is NaN, not a made-up number."""
    if score is None:
        return math.nan
    if key.startswith("hist_diff"):
        return 1.0 - score
    return score
