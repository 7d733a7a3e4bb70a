"""Where a chunk's scene scores should come from: the encode's own decode, or a second decode of the chunk.

Run:  .venv/bin/python bench/chunk_scan.py [--seconds 600] [--cuts 40] [--chunk-seconds 20] [--chunks 6]

On the ingest benchmark's 1080p30 source (bench/ingest.py makes and caches it), for the first `--chunks`
chunks, one after another on this machine:
* plain: the chunk's encode alone (`chunk_args(scan=False)`): the baseline;
* fused: what a chunk job runs (`encode_chunk`): one ffmpeg writes the chunk and a 256-px raw stream that
  `FrameScorer` scores as it arrives;
* separate: the plain encode, then OpenCV decodes the chunk file and the frames are downscaled as
  heaters.media.scenes does and scored (what a scan stage after the encode would cost).
Prints the machine, seconds per approach, and each one's ratio to plain; checks that fused and separate give
the same cuts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import machine, source_video  # noqa: E402
from scenedetect.scene_manager import compute_downscale_factor  # noqa: E402

from heaters.media.ffmpeg import chunk_args, proxy_fps  # noqa: E402
from heaters.media.probe import probe  # noqa: E402
from heaters.media.scene_scores import FrameScorer, analysis_size, replay_cuts  # noqa: E402
from heaters.media.tools import run_tool  # noqa: E402
from heaters.videos.chunk_encode import encode_chunk  # noqa: E402
from heaters.videos.chunking import plan_chunks  # noqa: E402


def opencv_scores(path: Path, reference: Path | None) -> list[float]:
    """Scores from decoding the chunk file (primed with the previous chunk's last frame, as a scan would)."""
    scorer = FrameScorer("adaptive")

    def frames(file: Path) -> list:  # type: ignore[type-arg]
        capture = cv2.VideoCapture(str(file))
        out = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            factor = compute_downscale_factor(max(image.shape[1], image.shape[0]))
            if factor > 1.0:
                size = (max(1, round(image.shape[1] / factor)), max(1, round(image.shape[0] / factor)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            out.append(image)
        capture.release()
        return out

    if reference is not None:
        scorer.prime(frames(reference)[-1])
    return [scorer.score(image) for image in frames(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--cuts", type=int, default=40)
    parser.add_argument("--chunk-seconds", type=float, default=20.0)
    parser.add_argument("--chunks", type=int, default=6)
    args = parser.parse_args()

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['ffmpeg']}")
    source, _cuts, _frames, _ = source_video(args.seconds, args.cuts)
    media = probe(source, timeout=120)
    fps = proxy_fps(media.fps)
    size = analysis_size(media.width, media.height)
    plan = plan_chunks(round(Fraction(media.duration_seconds) * fps), round(Fraction(args.chunk_seconds) * fps))
    plan = plan[: args.chunks]
    frames = sum((end or 0) - start for start, end in plan)
    times = {"plain": 0.0, "fused": 0.0, "separate": 0.0}
    fused_scores: list[float] = []
    separate_scores: list[float] = []
    with tempfile.TemporaryDirectory(prefix="heaters-chunk-scan-") as tmp_name:
        tmp = Path(tmp_name)
        previous: Path | None = None
        for index, (start, end) in enumerate(plan):
            plain = tmp / f"plain-{index}.mp4"
            argv = chunk_args(source, plain, fps=fps, start_frame=start, end_frame=end, analysis_size=size, scan=False)
            began = time.monotonic()
            run_tool(argv, timeout=3600)
            times["plain"] += time.monotonic() - began
            began = time.monotonic()
            separate_scores += opencv_scores(plain, previous)
            times["separate"] += time.monotonic() - began
            previous = plain

            began = time.monotonic()
            chunk = encode_chunk(
                str(source),
                tmp / f"fused-{index}",
                fps=fps,
                start_frame=start,
                end_frame=end,
                analysis_size=size,
                detector="adaptive",
                crf=28,
                timeout=3600,
            )
            times["fused"] += time.monotonic() - began
            fused_scores += chunk.scores
    times["separate"] += times["plain"]  # the second decode comes on top of the same encode

    fused_cuts = [c.frame for c in replay_cuts(fused_scores, fps=fps, min_scene_len_frames=15, finished=True)]
    separate_cuts = [c.frame for c in replay_cuts(separate_scores, fps=fps, min_scene_len_frames=15, finished=True)]
    print(f"source: {source.name}; {len(plan)} chunks of {args.chunk_seconds:g} s, {frames} frames at {fps} fps")
    print(f"\n{'approach':<42} {'seconds':>8} {'fps':>7} {'vs plain':>9}")
    labels = {
        "plain": "plain: encode the chunk only",
        "fused": "fused: encode + scores from the same decode",
        "separate": "separate: encode, then decode it for scores",
    }
    for name, label in labels.items():
        print(f"{label:<42} {times[name]:>8.1f} {frames / times[name]:>7.1f} {times[name] / times['plain']:>9.3f}")
    print(f"\ncuts: fused {fused_cuts}\n      separate {separate_cuts}\n      same: {fused_cuts == separate_cuts}")


if __name__ == "__main__":
    main()
