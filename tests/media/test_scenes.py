"""Scene detection end to end: synthetic source -> proxy_args -> probe -> detect_cuts -> segments.

The cuts are known to the frame, so "close" is wrong: every assertion is exact.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
from scenedetect import SceneManager, open_video
from scenedetect.detectors import AdaptiveDetector

from heaters.clips.segments import merge_short_segments, segments_from_cuts
from heaters.media.ffmpeg import stream_copy_args
from heaters.media.probe import probe
from heaters.media.scenes import DETECTORS, DetectedCut, SceneDetectionError, detect_cuts
from heaters.media.tools import run_tool

from . import synth
from .conftest import SCENES

EXPECTED_CUTS = [37, 66, 107, 140, 166, 211]
EXPECTED_SEGMENTS = [(0, 37), (37, 66), (66, 107), (107, 140), (140, 166), (166, 211), (211, 241)]


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("rate", ["25", "30", "29.97"])
def test_cuts_land_exactly_on_the_known_frames(
    rate: str, detector: str, cut_proxies: dict[str, synth.SynthVideo]
) -> None:
    proxy = cut_proxies[rate]
    info = probe(proxy.path, timeout=30)
    assert info.frame_count == sum(SCENES) and info.fps == proxy.fps

    cuts = detect_cuts(
        proxy.path,
        detector=detector,
        min_scene_len_frames=15,  # type: ignore[arg-type]
        expected_frame_count=info.frame_count,
        fps=info.fps,
    )

    assert [cut.frame for cut in cuts] == EXPECTED_CUTS == list(proxy.cuts)
    assert all(isinstance(cut, DetectedCut) and cut.score > 0 for cut in cuts)
    kept = merge_short_segments(cuts, info.frame_count, min_len=round(0.5 * info.fps))
    assert segments_from_cuts([cut.frame for cut in kept], info.frame_count) == EXPECTED_SEGMENTS


def test_a_detected_segment_stream_copies_to_exactly_its_frames(
    cut_proxies: dict[str, synth.SynthVideo], tmp_path: Path
) -> None:
    """The whole promise: a clip made from detected frames starts on the scene's first frame."""
    proxy = cut_proxies["29.97"]
    cuts = detect_cuts(proxy.path, expected_frame_count=proxy.frame_count, fps=proxy.fps)
    start, end = segments_from_cuts([c.frame for c in cuts], proxy.frame_count)[3]
    clip = tmp_path / "scene4.mp4"
    run_tool(
        stream_copy_args(
            proxy.path, clip, start_frame=start, end_frame=end, fps=proxy.fps, frame_count=proxy.frame_count
        ),
        timeout=30,
    )
    assert probe(clip, timeout=30).frame_count == end - start == 33

    # Re-detecting on the clip finds no cut: it holds one scene and nothing of its neighbours.
    assert detect_cuts(clip, expected_frame_count=end - start, min_scene_len_frames=1) == []


def test_scores_are_the_detectors_own_statistics(cut_proxies: dict[str, synth.SynthVideo]) -> None:
    proxy = cut_proxies["25"]
    adaptive = detect_cuts(proxy.path, detector="adaptive", expected_frame_count=241)
    assert all(cut.score >= 3.0 for cut in adaptive)  # adaptive_ratio passed the default 3.0 threshold
    content = detect_cuts(proxy.path, detector="content", expected_frame_count=241)
    assert all(cut.score >= 27.0 for cut in content)  # content_val passed ContentDetector's 27.0
    histogram = detect_cuts(proxy.path, detector="histogram", expected_frame_count=241)
    assert all(0.2 <= cut.score <= 2.0 for cut in histogram)  # 1 - correlation, past the 0.2 default
    assert not any(math.isnan(cut.score) for cut in adaptive + content + histogram)


def test_same_cuts_as_pyscenedetects_own_scene_manager(cut_proxies: dict[str, synth.SynthVideo]) -> None:
    proxy = cut_proxies["29.97"]
    manager = SceneManager()
    manager.add_detector(AdaptiveDetector(min_scene_len=15))
    manager.detect_scenes(open_video(str(proxy.path)))
    theirs = [start.frame_num for start, _ in manager.get_scene_list()[1:]]
    ours = [cut.frame for cut in detect_cuts(proxy.path, expected_frame_count=241, fps=proxy.fps)]
    assert ours == theirs


def test_threshold_and_min_scene_len_are_passed_through(cut_proxies: dict[str, synth.SynthVideo]) -> None:
    proxy = cut_proxies["30"]
    strict = detect_cuts(proxy.path, detector="content", threshold=250.0, expected_frame_count=241)
    assert strict == []  # no frame differs that much
    long_scenes = detect_cuts(proxy.path, min_scene_len_frames=40, expected_frame_count=241)
    frames = [cut.frame for cut in long_scenes]
    assert set(frames) < set(EXPECTED_CUTS)
    assert all(b - a >= 40 for a, b in zip([0, *frames], frames, strict=False))


def test_progress_reaches_the_end(cut_proxies: dict[str, synth.SynthVideo]) -> None:
    seen: list[tuple[int, int]] = []
    detect_cuts(
        cut_proxies["25"].path, expected_frame_count=241, on_progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1] == (241, 241)
    assert [n for n, _ in seen] == sorted(n for n, _ in seen)


def test_a_callers_exception_passes_through_unchanged(cut_proxies: dict[str, synth.SynthVideo]) -> None:
    class Deadline(Exception):
        pass

    def stop(done: int, total: int) -> None:
        raise Deadline

    with pytest.raises(Deadline):
        detect_cuts(cut_proxies["25"].path, expected_frame_count=241, on_progress=stop)


@pytest.mark.parametrize("expected", [240, 242, 300])
def test_frame_count_disagreement_raises(expected: int, cut_proxies: dict[str, synth.SynthVideo]) -> None:
    with pytest.raises(SceneDetectionError, match=f"read 241 frames but ffprobe counted {expected}"):
        detect_cuts(cut_proxies["25"].path, expected_frame_count=expected)


def test_within_tolerance_cuts_past_the_end_are_dropped(cut_proxies: dict[str, synth.SynthVideo]) -> None:
    cuts = detect_cuts(cut_proxies["25"].path, expected_frame_count=200, frame_count_tolerance=41)
    assert [cut.frame for cut in cuts] == [37, 66, 107, 140, 166]  # 211 is not inside 200 frames


def test_a_damaged_proxy_fails_loudly(cut_proxies: dict[str, synth.SynthVideo], tmp_path: Path) -> None:
    """The mdat of a faststart proxy cut in half: ffprobe still counts 241 frames, the decoder runs dry."""
    proxy = cut_proxies["25"]
    damaged = tmp_path / "damaged.mp4"
    data = proxy.path.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    expected = probe(damaged, timeout=30).frame_count
    assert expected == 241
    with pytest.raises(SceneDetectionError, match="ffprobe counted 241"):
        detect_cuts(damaged, expected_frame_count=expected)


def test_not_a_video_is_an_error_not_zero_cuts(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(SceneDetectionError):
        detect_cuts(text, expected_frame_count=100)


def test_unknown_detector_is_rejected(cut_proxies: dict[str, synth.SynthVideo]) -> None:
    with pytest.raises(ValueError, match="adaptive, content, histogram"):
        detect_cuts(cut_proxies["25"].path, detector="magic", expected_frame_count=241)  # type: ignore[arg-type]


def test_one_scene_video_has_no_cuts(tmp_path: Path) -> None:
    video = synth.make_cut_video(tmp_path / "one_scene.mp4", fps=Fraction(25), scene_frames=[60], audio=False)
    assert detect_cuts(video.path, expected_frame_count=60) == []
