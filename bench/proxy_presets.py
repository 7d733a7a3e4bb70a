"""Proxy preset benchmark: the x264 speed/quality trade-off of the proxy encode, measured.

Run:  .venv/bin/python bench/proxy_presets.py [--seconds 120] [--cuts 8] [--repeat 1]

The proxy (heaters.media.ffmpeg `proxy_args`: all-intra H.264, <=720p, CFR, CRF from settings `proxy_crf`)
uses x264 preset `PROXY_PRESET` (veryfast, chosen from this benchmark; `fast` before). This encodes the
benchmark source (bench/benchmark_video.py, the same content as bench/ingest.py's source, cached in bench/out/
under the same name) with each preset in turn, using exactly the pipeline's argv, and times each encode on the
wall clock (the median of `--repeat` runs). Then one ffmpeg run per preset compares the proxy with the source
scaled the same way (the proxy's scale filter and rate) for SSIM (All) and PSNR (average). The current default
is the baseline every ratio is against, measured in the same run. Prints the machine, the source and the
table; appends the result to bench/out/results.jsonl.

The encodes run one at a time and take all cores, like the worker's proxy stage; anything else running on
the machine slows them, so the load average is printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import machine, source_video  # noqa: E402  (the same source, file name and cache)

from heaters.media.ffmpeg import PROXY_PRESET, proxy_args, proxy_scale_filter  # noqa: E402
from heaters.media.probe import FFPROBE, MediaInfo, probe  # noqa: E402
from heaters.media.tools import run_tool  # noqa: E402
from heaters.settings import Settings  # noqa: E402
from heaters.videos.encode import proxy_fps  # noqa: E402

OUT = ROOT / "bench" / "out"
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
BASELINE = PROXY_PRESET  # proxy_args' default, what the pipeline runs today
DEFAULT_CRF = int(Settings.model_fields["proxy_crf"].default)
PROBE_TIMEOUT = 120.0

_SSIM = re.compile(r"\bSSIM\b.*\bAll:(?P<value>[0-9.]+|inf)")
_PSNR = re.compile(r"\bPSNR\b.*\baverage:(?P<value>[0-9.]+|inf)")
_FRAME = re.compile(r"^frame=\s*(?P<value>\d+)\s*$")


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def video_stream(path: Path) -> tuple[int, int]:
    """(frames, video bit rate in bit/s) of the first video stream, as the mp4 stores them."""
    out = run_tool(
        [
            FFPROBE,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_frames,bit_rate",
            "-of",
            "json",
            str(path),
        ],
        timeout=PROBE_TIMEOUT,
    )
    stream = json.loads(out.stdout_text)["streams"][0]
    return int(stream["nb_frames"]), int(stream["bit_rate"])


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def quality_args(proxy: Path, source: Path, fps: Fraction) -> list[str]:
    """SSIM and PSNR of the proxy against the source through the proxy's own scale filter, at its rate.

    Both sides start at timestamp 0 (`setpts`) so the filters pair frame n with frame n; `-progress` reports
    how many pairs were compared, which main() checks against both frame counts.
    """
    rate = f"{fps.numerator}/{fps.denominator}"
    graph = (
        f"[1:v]setpts=PTS-STARTPTS,{proxy_scale_filter()},fps={rate},format=yuv420p[ref];"
        "[0:v]setpts=PTS-STARTPTS,format=yuv420p[dist];"
        "[dist]split[d1][d2];[ref]split[r1][r2];"
        "[d1][r1]ssim[s];[d2][r2]psnr[p]"
    )
    return [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "info",
        "-progress",
        "pipe:2",
        "-i",
        str(proxy),
        "-i",
        str(source),
        "-filter_complex",
        graph,
        "-map",
        "[s]",
        "-map",
        "[p]",
        "-f",
        "null",
        "-",
    ]


@dataclass
class Quality:
    ssim: float
    psnr: float
    frames: int


def measure_quality(proxy: Path, source: Path, fps: Fraction, timeout: float) -> Quality:
    found: dict[str, float] = {}
    frames: list[int] = []

    def on_line(line: str) -> bool:
        text = line.strip()
        frame = _FRAME.match(text)
        if frame:
            frames.append(int(frame["value"]))
            return True
        for key, pattern in (("ssim", _SSIM), ("psnr", _PSNR)):
            match = pattern.search(text)
            if match:
                found[key] = float(match["value"])
        return "=" in text and " " not in text  # the rest of a -progress block

    run_tool(quality_args(proxy, source, fps), timeout=timeout, on_stderr_line=on_line)
    if "ssim" not in found or "psnr" not in found or not frames:
        raise SystemExit(f"no SSIM/PSNR/frame count in the quality run for {proxy.name}: {found}, {frames[-1:]}")
    return Quality(found["ssim"], found["psnr"], frames[-1])


@dataclass
class Row:
    preset: str
    wall_seconds: float  # median over the repeats
    wall_runs: list[float]
    cpu_seconds: float  # user + system CPU of the ffmpeg process, median over the repeats
    fps: float
    size_mb: float
    video_kbps: float
    frames: int
    ssim: float
    psnr: float
    fps_ratio: float = 0.0
    size_ratio: float = 0.0


def encode(source: Path, dst: Path, *, fps: Fraction, crf: int, preset: str, timeout: float) -> tuple[float, float]:
    """One proxy encode with the pipeline's exact argv: (wall seconds, CPU seconds)."""
    argv = proxy_args(source, dst, fps=fps, crf=crf, preset=preset)
    cpu_before = children_cpu_seconds()
    started = time.monotonic()
    # Progress records are consumed so the error tail (if any) holds ffmpeg's own messages.
    run_tool(argv, timeout=timeout, on_stderr_line=lambda line: "=" in line and " " not in line.strip())
    wall = time.monotonic() - started
    return wall, children_cpu_seconds() - cpu_before


def measure(
    source: Path, media: MediaInfo, presets: list[str], *, crf: int, repeat: int, tmp: Path
) -> tuple[list[Row], int]:
    fps = proxy_fps(media.fps)
    expected = max(1, round(Fraction(media.duration_seconds) * fps))
    timeout = max(600.0, 30.0 * media.duration_seconds)
    rows = []
    for preset in presets:
        dst = tmp / f"proxy_{preset}.mp4"
        runs = [encode(source, dst, fps=fps, crf=crf, preset=preset, timeout=timeout) for _ in range(repeat)]
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        frames, bit_rate = video_stream(dst)
        quality = measure_quality(dst, source, fps, timeout)
        if not frames == quality.frames == expected:
            raise SystemExit(
                f"{preset}: frame counts differ: proxy {frames}, compared {quality.frames}, "
                f"source at the proxy rate {expected}"
            )
        rows.append(
            Row(
                preset=preset,
                wall_seconds=wall,
                wall_runs=[round(w, 3) for w, _ in runs],
                cpu_seconds=cpu,
                fps=frames / wall,
                size_mb=dst.stat().st_size / 1e6,
                video_kbps=bit_rate / 1000,
                frames=frames,
                ssim=quality.ssim,
                psnr=quality.psnr,
            )
        )
        print(f"  {preset}: {wall:.1f} s, SSIM {quality.ssim:.5f}, PSNR {quality.psnr:.2f} dB", flush=True)
        dst.unlink()
    base = next(r for r in rows if r.preset == BASELINE)
    for row in rows:
        row.fps_ratio = row.fps / base.fps
        row.size_ratio = row.size_mb / base.size_mb
    return rows, expected


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'preset':<10} {'wall s':>8} {'cpu s':>8} {'fps':>7} {'fps/' + BASELINE:>9} {'MB':>8} {'video kbps':>11} "
        f"{'size/' + BASELINE:>10} {'SSIM All':>9} {'PSNR avg':>9}"
    )
    print(f"\n{header}")
    for r in rows:
        mark = "*" if r.preset == BASELINE else " "
        print(
            f"{r.preset + mark:<10} {r.wall_seconds:>8.2f} {r.cpu_seconds:>8.2f} {r.fps:>7.1f} {r.fps_ratio:>9.3f} "
            f"{r.size_mb:>8.2f} {r.video_kbps:>11.0f} {r.size_ratio:>10.3f} {r.ssim:>9.5f} {r.psnr:>9.2f}"
        )
    print(f"* {BASELINE}: the current default, the baseline of the ratios (measured in this run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--cuts", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1, help="encodes per preset; the median is reported")
    parser.add_argument("--crf", type=int, default=DEFAULT_CRF, help="default: settings proxy_crf's default")
    parser.add_argument("--presets", default=",".join(PRESETS), help=f"comma-separated; must include {BASELINE}")
    args = parser.parse_args()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if BASELINE not in presets:
        parser.error(f"--presets must include the baseline {BASELINE!r}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    info = machine()
    load_start = load_average()
    print(
        f"machine: {info['node']}, {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; "
        f"load average at start {load_start}"
    )
    print(info["ffmpeg"])
    source, _cuts, _frames, generated = source_video(args.seconds, args.cuts)
    media = probe(source, timeout=PROBE_TIMEOUT)
    fps = proxy_fps(media.fps)
    print(
        f"source: {source.name}, {media.width}x{media.height} @ {media.fps}, {media.duration_seconds:.1f} s, "
        f"{media.frame_count} frames, {source.stat().st_size / 1e6:.1f} MB"
        + (f" (generated in {generated:.0f} s)" if generated else "")
    )
    print(f"proxy: CRF {args.crf}, {fps} fps, all-intra; presets {', '.join(presets)}; {args.repeat} run(s) each")

    with tempfile.TemporaryDirectory(prefix="heaters-bench-presets-", dir=OUT) as tmp:
        rows, frames = measure(source, media, presets, crf=args.crf, repeat=args.repeat, tmp=Path(tmp))
    load_end = load_average()
    print_table(rows)
    print(f"\nframes per proxy: {frames}; load average at end {load_end}")

    record = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "bench": "proxy_presets",
        "machine": info,
        "load_average": {"start": load_start, "end": load_end},
        "source": {
            "name": source.name,
            "seconds": args.seconds,
            "cuts": args.cuts,
            "duration": media.duration_seconds,
            "frames": media.frame_count,
            "width": media.width,
            "height": media.height,
            "fps": str(media.fps),
            "size_mb": round(source.stat().st_size / 1e6, 2),
        },
        "proxy": {"crf": args.crf, "fps": str(fps), "frames": frames, "repeat": args.repeat, "baseline": BASELINE},
        "rows": [asdict(r) for r in rows],
    }
    with (OUT / "results.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
