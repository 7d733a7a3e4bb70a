"""Scene detection in two halves (`FrameScorer` + `replay_cuts`) against the single pass (`detect_cuts`).

The frames are decoded from real proxies with OpenCV and downscaled exactly as `heaters.media.scenes._run`
does, so the only difference from `detect_cuts` is that scoring and deciding are separated. Every comparison
is exact: the same cut frames and the same scores, to the last bit.
"""

from __future__ import annotations

import math
import random
import struct
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from scenedetect.scene_manager import compute_downscale_factor

from heaters.media.ffmpeg import proxy_args
from heaters.media.probe import probe
from heaters.media.scene_scores import (
    ANALYSIS_LONG_SIDE,
    FrameScorer,
    Replay,
    analysis_size,
    pack_scores,
    replay_cuts,
    settle_frames,
    unpack_scores,
)
from heaters.media.scenes import DETECTORS, DetectedCut, DetectorName, detect_cuts
from heaters.media.tools import run_tool

from . import synth
from .conftest import SCENES

EXPECTED_CUTS = [37, 66, 107, 140, 166, 211]


def _analysis_frames(path: Path) -> list[np.ndarray]:
    """Every frame of `path` as `detect_cuts` hands it to the detector (scenes._run's decode and downscale)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    frames: list[np.ndarray] = []
    downscale = 1.0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if not frames:
                downscale = compute_downscale_factor(max(image.shape[1], image.shape[0]))
            if downscale > 1.0:
                size = (max(1, round(image.shape[1] / downscale)), max(1, round(image.shape[0] / downscale)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            frames.append(image)
    finally:
        capture.release()
    return frames


def _scores(frames: list[np.ndarray], detector: DetectorName) -> list[float]:
    scorer = FrameScorer(detector)
    return [scorer.score(frame) for frame in frames]


@pytest.fixture(scope="module")
def wide_proxy(media_dir: Path) -> synth.SynthVideo:
    """A 320x180 proxy, so the frames really are downscaled (to 256x144) before scoring."""
    source = synth.make_cut_video(
        media_dir / "scores_wide.mp4", fps=Fraction(25), scene_frames=SCENES, width=320, height=180, audio=False
    )
    path = media_dir / "scores_wide.proxy.mp4"
    run_tool(proxy_args(source.path, path, fps=source.fps), timeout=120)
    return synth.SynthVideo(path, source.fps, source.frame_count, 320, 180, source.cuts, False)


@pytest.fixture(scope="module")
def proxies(
    cut_proxies: dict[str, synth.SynthVideo], wide_proxy: synth.SynthVideo
) -> dict[str, tuple[synth.SynthVideo, list[np.ndarray]]]:
    """Each proxy with its decoded analysis frames (decoded once for all detectors)."""
    chosen = {**cut_proxies, "25-wide": wide_proxy}
    return {name: (proxy, _analysis_frames(proxy.path)) for name, proxy in chosen.items()}


# ---- scores + replay == the single pass -----------------------------------------------------------------


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("name", ["25", "30", "29.97", "25-wide"])
def test_replayed_scores_give_the_single_pass_cuts_and_scores(
    name: str, detector: DetectorName, proxies: dict[str, tuple[synth.SynthVideo, list[np.ndarray]]]
) -> None:
    proxy, frames = proxies[name]
    info = probe(proxy.path, timeout=30)
    assert len(frames) == info.frame_count == sum(SCENES)
    # The frames scored are exactly the size the chunk scan asks ffmpeg for.
    assert frames[0].shape[:2] == analysis_size(info.width, info.height)[::-1]

    replayed = replay_cuts(_scores(frames, detector), detector=detector, fps=info.fps, finished=True)
    single = detect_cuts(proxy.path, detector=detector, expected_frame_count=info.frame_count, fps=info.fps)

    assert [cut.frame for cut in replayed] == EXPECTED_CUTS
    assert replayed == single  # frames and scores, bit for bit
    assert all(isinstance(cut, DetectedCut) and not math.isnan(cut.score) for cut in replayed)


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_primed_scorer_continues_the_single_scan_exactly(
    detector: DetectorName, proxies: dict[str, tuple[synth.SynthVideo, list[np.ndarray]]]
) -> None:
    """A chunk's scorer, primed with the frame before the chunk, gives the whole scan's scores from there on."""
    _, frames = proxies["25-wide"]
    whole = _scores(frames, detector)
    for start in (1, 36, 37, 38, 100, len(frames) - 1):  # 37 is a cut: its score is the big one
        scorer = FrameScorer(detector)
        scorer.prime(frames[start - 1])
        part = [scorer.score(frame) for frame in frames[start:]]
        assert part == whole[start:], f"scores from frame {start} differ"
    first = FrameScorer(detector).score(frames[0])
    assert math.isnan(first) if detector == "histogram" else first == 0.0  # nothing to compare with yet


# ---- replaying a prefix ---------------------------------------------------------------------------------


def _check_prefixes(scores: list[float], detector: DetectorName, min_len: int) -> dict[int, int]:
    """Replay prefixes [0, n) and check each against the full run; returns each cut's lag: the shortest
    prefix that emits it, minus its frame. Every n within reach of a cut is replayed (so lags are exact),
    and every 5th n elsewhere."""
    fps = Fraction(25)
    full = replay_cuts(scores, detector=detector, min_scene_len_frames=min_len, fps=fps, finished=True)
    settle = settle_frames(detector, min_scene_len_frames=min_len)
    near = {c.frame + k for c in full for k in range(-1, settle + 2)}
    checked = [n for n in range(1, len(scores) + 1) if n % 5 == 0 or n in near or n == len(scores)]
    first_seen: dict[int, int] = {}
    for n in checked:
        part = replay_cuts(scores[:n], detector=detector, min_scene_len_frames=min_len, fps=fps, finished=False)
        # What a prefix emits is the start of the full run's list, scores included: nothing emitted changes.
        assert part == full[: len(part)], f"prefix {n}"
        frames = {cut.frame for cut in part}
        assert {c.frame for c in full if c.frame + settle <= n} <= frames <= {c.frame for c in full if c.frame < n}
        if detector in ("adaptive", "histogram"):
            # These emit every cut exactly `settle` frames after it: the bound is the exact rule.
            assert part == [c for c in full if c.frame + settle <= n], f"prefix {n}"
        for frame in frames:
            first_seen.setdefault(frame, n)
    assert set(first_seen) == {c.frame for c in full}
    return {frame: n - frame for frame, n in first_seen.items()}


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_replayed_prefix_emits_a_prefix_of_the_cuts(
    detector: DetectorName, proxies: dict[str, tuple[synth.SynthVideo, list[np.ndarray]]]
) -> None:
    _, frames = proxies["25"]
    lags = _check_prefixes(_scores(frames, detector), detector, 15)
    assert sorted(lags) == EXPECTED_CUTS
    expected_lag = {"adaptive": 3, "content": 1, "histogram": 1}[detector]  # hard cuts far apart: no merging
    assert set(lags.values()) == {expected_lag}


def _synthetic_scores(detector: DetectorName, rng: random.Random, frames: int = 200) -> list[float]:
    """Quiet frames with spikes at random frames, often closer together than the minimum scene length."""
    if detector == "histogram":  # a correlation: low is a cut; the first frame has nothing to compare with
        scores = [math.nan] + [rng.uniform(0.9, 1.0) for _ in range(frames - 1)]
        for _ in range(14):
            scores[rng.randrange(1, frames)] = rng.uniform(0.0, 0.7)
        return scores
    scores = [0.0] + [rng.uniform(0.0, 8.0) for _ in range(frames - 1)]
    for _ in range(14):
        scores[rng.randrange(1, frames)] = rng.uniform(20.0, 90.0)
    return scores


@pytest.mark.parametrize("min_len", [1, 5, 15])
@pytest.mark.parametrize("detector", DETECTORS)
def test_prefix_rule_holds_for_crowded_cuts(detector: DetectorName, min_len: int) -> None:
    """Cuts closer than the minimum length make ContentDetector's flash filter merge and emit late."""
    settle = settle_frames(detector, min_scene_len_frames=min_len)
    assert settle == {"adaptive": 3, "content": min_len + 1, "histogram": 1}[detector]
    lags: list[int] = []
    for seed in range(4):
        lags += _check_prefixes(_synthetic_scores(detector, random.Random(seed)), detector, min_len).values()
    assert lags and min(lags) >= 1 and max(lags) <= settle
    if detector != "content" or min_len > 1:
        assert max(lags) == settle  # settle_frames is the real worst case, not a loose bound


# ---- a replay resumed between jobs ---------------------------------------------------------------------


def _resumed(scores: list[float], detector: DetectorName, min_len: int, chunk: int) -> list[DetectedCut]:
    """Feed `scores` a chunk at a time, saving and loading the replay between chunks as the chunk jobs do;
    after each chunk its cuts must be those of a replay of the whole prefix."""
    options = {"threshold": None, "min_scene_len_frames": min_len, "fps": Fraction(25)}
    replay = Replay(detector, threshold=None, min_scene_len_frames=min_len, fps=Fraction(25))
    for start in range(0, len(scores), chunk):
        loaded = Replay.loads(replay.dumps(), detector, threshold=None, min_scene_len_frames=min_len, fps=Fraction(25))
        assert loaded is not None and loaded.frames == start
        replay = loaded
        replay.feed(scores[start : start + chunk])
        prefix = scores[: start + chunk]
        assert replay.cuts == replay_cuts(prefix, detector=detector, finished=False, **options)  # type: ignore[arg-type]
    replay.finish()
    return replay.cuts


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_replay_resumed_chunk_by_chunk_is_one_replay(
    detector: DetectorName, proxies: dict[str, tuple[synth.SynthVideo, list[np.ndarray]]]
) -> None:
    _, frames = proxies["25"]
    scores = _scores(frames, detector)
    whole = replay_cuts(scores, detector=detector, fps=Fraction(25), finished=True)
    assert [cut.frame for cut in whole] == EXPECTED_CUTS
    for chunk in (1, 36, 37, 38, 100, len(scores)):  # 37: a cut on the boundary
        assert _resumed(scores, detector, 15, chunk) == whole, f"chunks of {chunk}"
    # Cuts closer than the minimum length: ContentDetector's flash filter holds a merge across the boundary.
    crowded = _synthetic_scores(detector, random.Random(5))
    expected = replay_cuts(crowded, detector=detector, min_scene_len_frames=15, fps=Fraction(25), finished=True)
    for chunk in (1, 7, 16, 50):
        assert _resumed(crowded, detector, 15, chunk) == expected, f"crowded, chunks of {chunk}"


def test_a_saved_replay_is_used_only_for_its_own_settings() -> None:
    def saved(detector: DetectorName = "adaptive", **changes: object) -> bytes:
        options: dict[str, object] = {"threshold": None, "min_scene_len_frames": 15, "fps": Fraction(25), **changes}
        replay = Replay(detector, **options)  # type: ignore[arg-type]
        replay.feed([0.0, 1.0, 2.0])
        return replay.dumps()

    def load(data: bytes | None, detector: DetectorName = "adaptive") -> Replay | None:
        return Replay.loads(data, detector, threshold=None, min_scene_len_frames=15, fps=Fraction(25))

    resumed = load(saved())
    assert resumed is not None and resumed.frames == 3 and resumed.cuts == []
    assert load(None) is None and load(b"") is None
    assert load(b"not a pickle") is None  # a cache miss, not an error
    assert load(saved("content")) is None and load(saved(), "content") is None
    assert load(saved(threshold=2.0)) is None
    assert load(saved(min_scene_len_frames=12)) is None
    assert load(saved(fps=Fraction(30000, 1001))) is None
    finished = Replay("adaptive", threshold=None, min_scene_len_frames=15, fps=Fraction(25))
    finished.feed([0.0, 1.0])
    finished.finish()
    assert load(finished.dumps()) is None
    with pytest.raises(ValueError, match="reached the end of the video"):
        finished.feed([1.0])


# ---- storage ------------------------------------------------------------------------------------------


def test_pack_unpack_round_trip() -> None:
    rng = random.Random(7)
    values = [0.0, -0.0, 1.0, 1e-300, 255.0, math.inf, -math.inf, *(rng.uniform(-1, 300) for _ in range(300))]
    packed = pack_scores(values)
    assert len(packed) == 8 * len(values)
    assert packed[:16] == struct.pack("<dd", 0.0, -0.0)  # little-endian float64, as stored
    back = unpack_scores(packed)
    assert back == values and all(isinstance(x, float) for x in back)
    assert math.copysign(1.0, back[1]) == -1.0
    nan = unpack_scores(pack_scores([math.nan, 2.5]))
    assert math.isnan(nan[0]) and nan[1] == 2.5
    assert unpack_scores(pack_scores([])) == [] and pack_scores([]) == b""


# ---- analysis size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1280, 720), (256, 144)),  # landscape proxy
        ((3840, 2160), (256, 144)),
        ((640, 360), (256, 144)),
        ((1920, 800), (256, 106)),  # 106.7 rounds to 107, then down to even
        ((720, 1280), (144, 256)),  # portrait keeps its orientation
        ((480, 854), (144, 256)),
        ((1000, 1000), (256, 256)),
        ((256, 144), (256, 144)),  # at the analysis size already
        ((160, 90), (160, 90)),  # small: never upscaled
        ((255, 143), (254, 142)),  # small and odd: made even
        ((1280, 4), (256, 2)),  # a sliver keeps at least 2 pixels
    ],
)
def test_analysis_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert analysis_size(*size) == expected


def test_analysis_size_is_the_single_pass_downscale_made_even() -> None:
    """Over every even proxy size: within a pixel of detect_cuts' own size, and equal when that is even."""
    for long_side in range(2, 1282, 2):
        for short_side in range(2, min(long_side, 720) + 1, 2):
            for width, height in ((long_side, short_side), (short_side, long_side)):
                factor = compute_downscale_factor(max(width, height))
                theirs = (width, height)
                if factor > 1.0:  # scenes._run's arithmetic
                    theirs = (max(1, round(width / factor)), max(1, round(height / factor)))
                ours = analysis_size(width, height)
                assert ours[0] % 2 == 0 and ours[1] % 2 == 0
                assert max(ours) <= min(ANALYSIS_LONG_SIDE, max(width, height))  # never upscaled
                assert abs(ours[0] - theirs[0]) <= 1 and abs(ours[1] - theirs[1]) <= 1, (width, height)
                if theirs[0] % 2 == 0 and theirs[1] % 2 == 0:
                    assert ours == theirs, (width, height)
