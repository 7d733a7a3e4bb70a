"""Scene detection in two halves, so a video can be scanned in chunks, by any worker, in any order.

Every detector here decides from one number per frame, computed from that frame and the one before it
(ContentDetector's and AdaptiveDetector's `content_val`, HistogramDetector's histogram correlation).
That number is the expensive part: it needs the decoded pixels. The decision over the numbers (the
adaptive window, the flash filter, the minimum scene length) is cheap but carries state from frame to
frame. So:

* `FrameScorer` turns frames into scores. A chunk's scorer is primed with the last frame of the chunk
  before, and then its scores are exactly those of a single pass. It needs nothing else from its
  neighbours, so the chunks of a video are scored in parallel, in the same decode that encodes them.
* `replay_cuts` runs the library's own detector over the scores of frames [0, n), with the pixel work
  replaced by a lookup. Replaying a prefix gives exactly the cuts a single pass had emitted by then,
  so the cuts of the scanned part are final as soon as it is scanned. `Replay` keeps the detector between
  chunks (pickled with the video), so each chunk's scan resumes where the last one stopped.

`tests/media/test_scene_scores.py` checks that scoring and replay give the single pass's cuts.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import cv2
import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector

from heaters.media.scenes import DetectedCut, DetectorName, SceneDetectionError, _normalise, _RecentScores, _score_key

log = logging.getLogger(__name__)

# The analysis size: the long side of the frames the detector sees, as SceneManager's auto-downscale picks.
ANALYSIS_LONG_SIDE = 256
# Content scores ignore the time they are given (only a StatsManager would use it, and the scorer has none).
_ANY_TIME = FrameTimecode(0, Fraction(30))


def analysis_size(width: int, height: int) -> tuple[int, int]:
    """The frame size scores are computed at: long side 256 (never upscaled), aspect kept, even."""
    long_side = max(width, height)
    if long_side <= ANALYSIS_LONG_SIDE:
        return width - width % 2, height - height % 2
    scale = ANALYSIS_LONG_SIDE / long_side
    w, h = max(2, round(width * scale)), max(2, round(height * scale))
    return w - w % 2, h - h % 2


class FrameScorer:
    """Scores of consecutive BGR frames; `prime` feeds a frame whose score belongs to another chunk."""

    def __init__(self, detector: DetectorName) -> None:
        self.detector = detector
        self._content = ContentDetector() if detector in ("adaptive", "content") else None
        self._last_hist: Any = None
        self._bins = int(HistogramDetector()._bins)  # the default the decision side uses too

    def prime(self, frame: np.ndarray) -> None:
        self.score(frame)

    def score(self, frame: np.ndarray) -> float:
        """This frame's score against the previous one; NaN for a histogram's first frame (none to compare)."""
        if self._content is not None:
            return float(self._content._calculate_frame_score(_ANY_TIME, frame))
        hist = HistogramDetector.calculate_histogram(frame, bins=self._bins)
        last, self._last_hist = self._last_hist, hist
        if last is None:
            return math.nan
        return float(cv2.compareHist(last, hist, cv2.HISTCMP_CORREL))


class _ReplayScores:
    """Mixed into Content/AdaptiveDetector: the pixel work is a lookup of the frame's stored score."""

    scores: Sequence[float]
    stats_manager: Any

    def _calculate_frame_score(self, timecode: FrameTimecode, frame_img: Any) -> float:
        score = float(self.scores[int(timecode.frame_num)])
        if self.stats_manager is not None:
            self.stats_manager.set_metrics(timecode, {ContentDetector.FRAME_SCORE_KEY: score})
        return score


class _ReplayAdaptive(_ReplayScores, AdaptiveDetector):
    pass


class _ReplayContent(_ReplayScores, ContentDetector):
    pass


class _ReplayHistogram(HistogramDetector):
    """HistogramDetector.process_frame's decision with the correlation looked up instead of computed.

    The library computes the histogram inside process_frame, so its decision (a cut when the correlation
    is at most the threshold and the minimum length has passed since the last cut) is restated here;
    the equivalence test pins it to the library's own run.
    """

    scores: Sequence[float]
    _last_cut: Any

    def process_frame(self, timecode: FrameTimecode, frame_img: Any) -> list[FrameTimecode]:
        cuts: list[FrameTimecode] = []
        if not self._last_cut:
            self._last_cut = timecode
        correlation = self.scores[int(timecode.frame_num)]
        if not math.isnan(correlation):
            if correlation <= self._threshold and (timecode - self._last_cut) >= self._min_scene_len:
                cuts.append(timecode)
                self._last_cut = timecode
            if self.stats_manager is not None:
                self.stats_manager.set_metrics(timecode, {self._metric_key: correlation})
        return cuts


def _replay_detector(detector: DetectorName, *, threshold: float | None, min_scene_len_frames: int) -> Any:
    kwargs: dict[str, Any] = {"min_scene_len": min_scene_len_frames}
    if detector == "adaptive":
        if threshold is not None:
            kwargs["adaptive_threshold"] = threshold
        return _ReplayAdaptive(**kwargs)
    if threshold is not None:
        kwargs["threshold"] = threshold
    if detector == "content":
        return _ReplayContent(**kwargs)
    if detector == "histogram":
        return _ReplayHistogram(**kwargs)
    raise ValueError(f"unknown scene detector {detector!r}")


class _Window:
    """The scores of frames [offset, offset + len(values)), looked up by frame number."""

    def __init__(self, offset: int, values: Sequence[float]) -> None:
        self.offset, self.values = offset, values

    def __getitem__(self, frame: int) -> float:
        return self.values[frame - self.offset]


class Replay:
    """A detector run over scores, fed a chunk at a time; `dumps` saves it between jobs, `loads` resumes it.

    Resuming makes a long video's scan linear instead of quadratic (a three-hour video has 540 chunks). The
    saved state is only a cache: `loads` returns None for anything it cannot use, and the caller replays
    from frame 0, which gives the same cuts.
    """

    VERSION = 1

    def __init__(
        self, detector: DetectorName, *, threshold: float | None, min_scene_len_frames: int, fps: Fraction
    ) -> None:
        self.detector = detector
        self.key = (detector, threshold, min_scene_len_frames, Fraction(fps))
        self.rate = Fraction(fps)
        self.instance = _replay_detector(detector, threshold=threshold, min_scene_len_frames=min_scene_len_frames)
        self.stats = _RecentScores(
            _score_key(detector, self.instance), horizon=int(self.instance.event_buffer_length) + 2
        )
        self.instance.stats_manager = self.stats
        self.frames = 0
        self.found: list[DetectedCut] = []
        self.finished = False

    def _collect(self, timecodes: list[Any]) -> None:
        for timecode in timecodes:
            frame = int(timecode.frame_num)
            if self.found and frame <= self.found[-1].frame:
                raise SceneDetectionError(f"The {self.detector} detector emitted cut {frame} after {self.found[-1]}")
            self.found.append(DetectedCut(frame, _normalise(self.stats.scores.get(frame), self.stats.key)))

    def feed(self, scores: Sequence[float]) -> None:
        """The scores of the next frames, [self.frames, self.frames + len(scores))."""
        if self.finished:
            raise ValueError("this replay has reached the end of the video")
        self.instance.scores = _Window(self.frames, scores)
        for frame in range(self.frames, self.frames + len(scores)):
            self._collect(self.instance.process_frame(FrameTimecode(frame, self.rate), None))
            self.stats.forget_before(frame)
        self.frames += len(scores)
        self.instance.scores = None

    def finish(self) -> None:
        """The end of the video: the detector's end step runs (no frame may follow)."""
        if self.frames and not self.finished:
            self._collect(self.instance.post_process(FrameTimecode(self.frames - 1, self.rate)))
        self.finished = True

    @property
    def cuts(self) -> list[DetectedCut]:
        return [cut for cut in self.found if 0 < cut.frame < self.frames]

    def dumps(self) -> bytes:
        return pickle.dumps((self.VERSION, self.key, self), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(
        cls,
        data: bytes | None,
        detector: DetectorName,
        *,
        threshold: float | None,
        min_scene_len_frames: int,
        fps: Fraction,
    ) -> Replay | None:
        """A saved replay for these settings, or None (none saved, other settings, another library version)."""
        if not data:
            return None
        try:
            version, key, replay = pickle.loads(data)  # our own bytes, from our own database
        except Exception as error:  # a state from another release is only a cache miss
            log.warning(
                "scene_scores.replay_state_unusable (%s: %s); replaying from frame 0", type(error).__name__, error
            )
            return None
        wanted = (detector, threshold, min_scene_len_frames, Fraction(fps))
        if version != cls.VERSION or key != wanted or not isinstance(replay, Replay) or replay.finished:
            return None
        return replay


def replay_cuts(
    scores: Sequence[float],
    *,
    detector: DetectorName = "adaptive",
    threshold: float | None = None,
    min_scene_len_frames: int = 15,
    fps: Fraction,
    finished: bool,
) -> list[DetectedCut]:
    """The cuts a single pass emits over frames [0, len(scores)), each with its score.

    `finished` says these are all the video's frames (the detector's end-of-video step runs). Cuts are
    returned in the order emitted, which is frame order; anything else is a detector we do not understand.
    """
    replay = Replay(detector, threshold=threshold, min_scene_len_frames=min_scene_len_frames, fps=fps)
    replay.feed(scores)
    if finished:
        replay.finish()
    return replay.cuts


def settle_frames(detector: DetectorName, *, min_scene_len_frames: int) -> int:
    """How far behind the last scanned frame a cut may still be emitted: the detector's event buffer."""
    instance = _replay_detector(detector, threshold=None, min_scene_len_frames=min_scene_len_frames)
    return int(instance.event_buffer_length) + 1


def pack_scores(scores: Sequence[float]) -> bytes:
    """Scores as stored (float64, little-endian): a chunk of 300 frames is 2.4 kB."""
    return np.asarray(scores, dtype="<f8").tobytes()


def unpack_scores(data: bytes) -> list[float]:
    return [float(x) for x in np.frombuffer(data, dtype="<f8")]
