"""Export benchmark: approved clips exported from the local S3 server, against plain FFmpeg in the same run.

Run:  .venv/bin/python bench/export.py [--clips 200] [--min-seconds 2] [--max-seconds 6] [--threads 2] [--seed 1]

It makes a synthetic 1280x720 30 fps source with audio (moving test pattern, rotating hue, temporal noise),
encodes it to the product's all-intra proxy with `encode_proxy` (cached under bench/out/, keyed by its
parameters, so reruns skip this), starts throwaway PostgreSQL (migrated with our Alembic migrations), Redis
and S3, uploads the proxy, and writes one source_videos row and N clips in `review_approved` (seeded random
lengths at frame boundaries, never overlapping). Then, on the same clips:

1. ours: `run_stage(Stage.EXPORT, clip_id, run_export)` in this process, as the `exports` actor runs it
   (claim, transactions, presigned URL, stream copy over HTTP ranges, frame check, upload, HEAD, DB write,
   the keyframes message to the real Redis);
2. plain: `ffmpeg` with `stream_copy_args` from the same presigned URL to a local file (no DB, no S3 write):
   the floor, so ours minus plain is our overhead per clip;
3. re-encode: libx264 veryfast CRF 23 + AAC of the same frames from the same URL, what export would cost
   without the all-intra proxy.

The three run one clip at a time, interleaved clip by clip in a rotating order, so the load of a shared
machine falls on all of them alike; each clip is timed wall-clock end to end. Then ours (and plain, for
reference) again with `--threads` threads, like the `exports` queue (heaters.queues.CONCURRENCY).
A warm-up clip of each method runs first and is not counted. CPU is this process plus its ffmpeg children
(PostgreSQL, Redis and SeaweedFS are not counted).

Checks: every clip ends `exported` with `processing_metadata.export.frames` and the object's x-amz-meta-frames
equal to its length; ffprobe counts the video frames of a sample of each method's outputs; the bucket holds
exactly N clips at the end. Prints the machine, the load average at start and end, and the table; writes
bench/out/export.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import machine  # noqa: E402

from heaters.devstack.postgres import Postgres  # noqa: E402
from heaters.devstack.redis import Redis  # noqa: E402
from heaters.devstack.seaweed import SeaweedS3  # noqa: E402
from heaters.devstack.service import free_port  # noqa: E402
from heaters.media.ffmpeg import frame_time, seconds_arg, stream_copy_args  # noqa: E402
from heaters.settings import Settings  # noqa: E402

OUT = ROOT / "bench" / "out"
FPS = Fraction(30)
SIZE = (1280, 720)
PROXY_CRF = int(Settings.model_fields["proxy_crf"].default)  # the product's default PROXY_CRF
SAMPLES = 10
TITLE = "export bench"
S3_KEYS = {"access_key": "BENCHKEY", "secret_key": "benchsecret123", "bucket": "bench"}


# ---- the source and its proxy (cached) ----------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    path: Path
    frame_count: int
    fps: Fraction
    width: int
    height: int
    has_audio: bool
    made_in_seconds: float | None  # None: reused from the cache


def source_args(dst: Path, seconds: int) -> list[str]:
    """A camera-like long-GOP source whose every frame differs (noise), so the proxy has a realistic bitrate."""
    video = f"testsrc2=s={SIZE[0]}x{SIZE[1]}:r={FPS},hue=h=t*6,noise=alls=5:allf=t"
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", "sine=f=440:r=48000:beep_factor=4",
        "-t", str(seconds), "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "96k", str(dst),
    ]  # fmt: skip


def cached_proxy(seconds: int) -> Proxy:
    """The all-intra proxy `encode_proxy` makes of a `seconds`-long source, made once per parameter set."""
    from heaters.videos.encode import PROXY_NAME, encode_proxy

    folder = OUT / f"export_proxy_{seconds}s_{SIZE[0]}x{SIZE[1]}p{FPS}_crf{PROXY_CRF}"
    meta = folder / "proxy.json"
    if (folder / PROXY_NAME).is_file() and meta.is_file():
        data = json.loads(meta.read_text())
        return Proxy(folder / PROXY_NAME, data["frame_count"], Fraction(data["fps"]), data["width"],
                     data["height"], data["has_audio"], None)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.mp4"
    print(f"making a {seconds} s source and its proxy (once; cached in {folder.relative_to(ROOT)})", flush=True)
    started = time.monotonic()
    subprocess.run(source_args(source, seconds), check=True, stdin=subprocess.DEVNULL)
    generated = time.monotonic() - started
    made = encode_proxy(source, folder, crf=PROXY_CRF, timeout=4 * 3600)
    encoded = time.monotonic() - started - generated
    source.unlink()
    info = made.info
    meta.write_text(
        json.dumps(
            {
                "frame_count": info.frame_count,
                "fps": str(info.fps),
                "width": info.width,
                "height": info.height,
                "has_audio": info.has_audio,
                "source_seconds": round(generated, 1),
                "encode_proxy_seconds": round(encoded, 1),
            }
        )
    )
    print(f"  source {generated:.0f} s, encode_proxy {encoded:.0f} s", flush=True)
    return Proxy(made.path, info.frame_count, info.fps, info.width, info.height, info.has_audio, generated + encoded)


# ---- the clips ------------------------------------------------------------------------------------------


def plan_lengths(rng: random.Random, clips: int, min_seconds: float, max_seconds: float) -> list[int]:
    low, high = round(min_seconds * FPS), round(max_seconds * FPS)
    if not 0 < low <= high:
        raise SystemExit("need 0 < --min-seconds <= --max-seconds")
    return [rng.randint(low, high) for _ in range(clips)]


def source_seconds(lengths: list[int]) -> int:
    """Room for every clip plus a few percent of gaps, rounded up to whole minutes so the cache is shared."""
    return int(math.ceil(float(sum(lengths) / FPS) * 1.03 / 60) * 60)


def place(rng: random.Random, lengths: list[int], frame_count: int) -> list[tuple[int, int]]:
    """[start, end) of each clip in source order, separated by random gaps that use up the spare frames."""
    spare = frame_count - sum(lengths)
    if spare < 0:
        raise SystemExit(f"the proxy has {frame_count} frames, the clips need {sum(lengths)}")
    cuts = sorted(rng.randint(0, spare) for _ in range(len(lengths)))
    segments, position, used = [], 0, 0
    for cut, length in zip(cuts, lengths, strict=True):
        position += cut - used
        used = cut
        segments.append((position, position + length))
        position += length
    return segments


def write_rows(proxy: Proxy, key_for: Callable[[int], str], segments: list[tuple[int, int]]) -> tuple[int, list[int]]:
    """One encoded video on the proxy and its clips, approved (as a reviewer's approve leaves them)."""
    from sqlalchemy import text

    from heaters.adapters import get_storage
    from heaters.clips.segments import segment_identifier
    from heaters.db import unit_of_work
    from heaters.models import Clip, SourceVideo

    with unit_of_work() as session:
        video = SourceVideo(
            title=TITLE,
            ingest_state="encoded",
            needs_splicing=False,
            fps_num=proxy.fps.numerator,
            fps_den=proxy.fps.denominator,
            frame_count=proxy.frame_count,
            duration_seconds=float(proxy.frame_count / proxy.fps),
            width=proxy.width,
            height=proxy.height,
        )
        session.add(video)
        session.flush()
        assert video.id is not None
        video_id = video.id
    key = key_for(video_id)
    started = time.monotonic()
    get_storage().upload_file(proxy.path, key, content_type="video/mp4")
    print(f"proxy uploaded to S3 in {time.monotonic() - started:.1f} s", flush=True)
    with unit_of_work() as session:
        session.execute(text("UPDATE source_videos SET proxy_filepath = :k WHERE id = :i"), {"k": key, "i": video_id})
        clips = [
            Clip(
                source_video_id=video_id,
                clip_identifier=segment_identifier(video_id, index),
                start_frame=start,
                end_frame=end,
                ingest_state="review_approved",
                processing_metadata={"created_from": "bench", "segment_index": index},
            )
            for index, (start, end) in enumerate(segments, start=1)
        ]
        session.add_all(clips)
        session.flush()
        ids = [c.id for c in clips if c.id is not None]
        session.execute(text("UPDATE clips SET reviewed_at = now() WHERE id = ANY(:ids)"), {"ids": ids})
    return video_id, ids


def reset_exports(clip_ids: list[int]) -> None:
    """Back to `review_approved` with no object and no claim, so a second run does the whole export again."""
    from sqlalchemy import text

    from heaters.adapters import get_storage
    from heaters.db import unit_of_work

    storage = get_storage()
    found = storage.list_keys("clips/")
    if found:
        storage.delete(*found)
    with unit_of_work() as session:
        session.execute(
            text(
                "UPDATE clips SET ingest_state = 'review_approved', clip_filepath = NULL, "
                "processing_metadata = processing_metadata - 'export' WHERE id = ANY(:ids)"
            ),
            {"ids": clip_ids},
        )
        session.execute(
            text("DELETE FROM job_claims WHERE stage IN ('clip.export', 'clip.keyframes') AND entity_id = ANY(:ids)"),
            {"ids": clip_ids},
        )


# ---- the three methods ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    clip_id: int
    start: int
    end: int


def reencode_args(src: str, dst: Path, *, start_frame: int, end_frame: int, fps: Fraction) -> list[str]:
    """The same frames re-encoded: accurate seek (-ss before -i, decoding), exact frame count, H.264 + AAC."""
    count = end_frame - start_frame
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y",
        "-ss", seconds_arg(frame_time(start_frame, fps)), "-i", src, "-map", "0:v:0", "-map", "0:a:0?",
        "-frames:v", str(count), "-t", seconds_arg(Fraction(count) / fps),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4", str(dst),
    ]  # fmt: skip


class Methods:
    """Each method runs one clip end to end; local outputs are kept only for the sampled clips."""

    def __init__(self, url: str, proxy: Proxy, scratch: Path, keep: set[int]) -> None:
        self.url, self.proxy, self.scratch, self.keep = url, proxy, scratch, keep

    def ours(self, job: Job) -> None:
        from heaters.clips.stages import run_export
        from heaters.pipeline.runner import run_stage
        from heaters.pipeline.stages import Stage

        run_stage(Stage.EXPORT, job.clip_id, run_export)

    def _local(self, job: Job, args: list[str]) -> None:
        subprocess.run(args, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        if job.clip_id not in self.keep:
            Path(args[-1]).unlink()

    def plain(self, job: Job) -> None:
        dst = self.scratch / f"plain_{job.clip_id}.mp4"
        args = stream_copy_args(
            self.url, dst, start_frame=job.start, end_frame=job.end, fps=self.proxy.fps,
            frame_count=self.proxy.frame_count,
        )  # fmt: skip
        self._local(job, args)

    def reencode(self, job: Job) -> None:
        dst = self.scratch / f"reencode_{job.clip_id}.mp4"
        self._local(job, reencode_args(self.url, dst, start_frame=job.start, end_frame=job.end, fps=self.proxy.fps))


def cpu_seconds() -> float:
    """This process (all its threads) plus its waited-for children (every ffmpeg and ffprobe)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Timing:
    name: str
    seconds: list[float]  # per clip, wall clock
    cpu: float  # seconds, all clips
    wall: float  # seconds, all clips: the sum when one at a time, first start to last end when threaded
    threads: int = 1


def interleaved(methods: dict[str, Callable[[Job], None]], jobs: list[Job]) -> dict[str, Timing]:
    """One clip at a time; the order of the methods rotates per clip so no method always goes first."""
    names = list(methods)
    timings = {name: Timing(name, [], 0.0, 0.0) for name in names}
    for index, job in enumerate(jobs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            methods[name](job)
            elapsed = time.perf_counter() - t0
            timings[name].seconds.append(elapsed)
            timings[name].cpu += cpu_seconds() - cpu0
            timings[name].wall += elapsed
        if (index + 1) % 50 == 0:
            print(f"  {index + 1}/{len(jobs)} clips, load {load()}", flush=True)
    return timings


def threaded(name: str, method: Callable[[Job], None], jobs: list[Job], threads: int) -> Timing:
    """All clips through a pool of `threads`, as a worker's queue threads take messages."""

    def one(job: Job) -> float:
        t0 = time.perf_counter()
        method(job)
        return time.perf_counter() - t0

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        seconds = list(pool.map(one, jobs))
    return Timing(name, seconds, cpu_seconds() - cpu0, time.perf_counter() - t0, threads)


# ---- checks ---------------------------------------------------------------------------------------------


def video_frames(source: str) -> int:
    """ffprobe's count of the video packets actually in the file (not the header's claim)."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", source],
        check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return int(result.stdout.strip().splitlines()[0].strip(","))


def check_exports(jobs: list[Job], sample: list[Job]) -> dict[str, Any]:
    """Every clip exported with the right frame count in its row and its object; ffprobe on the sample."""
    from sqlalchemy import text

    from heaters.adapters import get_media_urls, get_storage
    from heaters.clips.stages import FRAMES_META
    from heaters.db import get_engine

    with get_engine().connect() as connection:
        rows = {
            int(r.id): r
            for r in connection.execute(
                text("SELECT id, ingest_state, clip_filepath, processing_metadata, last_error FROM clips")
            )
        }
    storage = get_storage()
    problems: list[str] = []
    for job in jobs:
        row, expected = rows[job.clip_id], job.end - job.start
        if row.ingest_state != "exported" or not row.clip_filepath:
            problems.append(f"clip {job.clip_id}: {row.ingest_state} ({row.last_error})")
            continue
        recorded = row.processing_metadata.get("export", {}).get("frames")
        head = storage.head(row.clip_filepath)
        meta = head.metadata.get(FRAMES_META) if head else None
        if recorded != expected or meta != str(expected):
            problems.append(f"clip {job.clip_id}: {expected} frames, row says {recorded}, object says {meta}")
    probed = {}
    for job in sample:
        key = rows[job.clip_id].clip_filepath
        if key:
            probed[job.clip_id] = video_frames(get_media_urls().get_url(key, expires_in=600))
            if probed[job.clip_id] != job.end - job.start:
                problems.append(f"clip {job.clip_id}: ffprobe counts {probed[job.clip_id]} of {job.end - job.start}")
    objects = len(storage.list_keys("clips/"))
    exported = sum(1 for r in rows.values() if r.ingest_state == "exported")
    return {"exported": exported, "objects": objects, "ffprobed": len(probed), "problems": problems}


def check_local(scratch: Path, prefix: str, sample: list[Job]) -> list[str]:
    problems = []
    for job in sample:
        found = video_frames(str(scratch / f"{prefix}_{job.clip_id}.mp4"))
        if found != job.end - job.start:
            problems.append(f"{prefix} clip {job.clip_id}: {found} frames instead of {job.end - job.start}")
    return problems


# ---- report ---------------------------------------------------------------------------------------------


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank, as the other benchmarks report it."""
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), round(fraction * len(ordered) + 0.5))) - 1]


def row(timing: Timing, reference: Timing) -> dict[str, Any]:
    n = len(timing.seconds)
    return {
        "method": timing.name,
        "threads": timing.threads,
        "clips": n,
        "total_s": round(timing.wall, 2),
        "clips_per_s": round(n / timing.wall, 2),
        "p50_ms": round(1000 * percentile(timing.seconds, 0.5), 1),
        "p95_ms": round(1000 * percentile(timing.seconds, 0.95), 1),
        "cpu_ms_per_clip": round(1000 * timing.cpu / n, 1),
        "ratio_vs_ours": round(timing.wall / reference.wall, 3),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'method':<44} {'total s':>8} {'clips/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms/clip':>12} {'vs ours':>8}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(
            f"{r['method']:<44} {r['total_s']:>8.1f} {r['clips_per_s']:>8.2f} {r['p50_ms']:>8.1f} "
            f"{r['p95_ms']:>8.1f} {r['cpu_ms_per_clip']:>12.1f} {r['ratio_vs_ours']:>8.3f}"
        )


# ---- main -----------------------------------------------------------------------------------------------


def use_services(pg: Postgres, rd: Redis, s3: SeaweedS3, work: Path) -> None:
    """Settings for this process, read once by `get_settings`; the broker is a real one on the local Redis."""
    os.environ.update(
        {
            "APP_ENV": "test",
            "DATABASE_URL": pg.create_database("bench"),
            "REDIS_URL": rd.url,
            "S3_ENDPOINT_URL": s3.url,
            "S3_BUCKET": S3_KEYS["bucket"],
            "AWS_ACCESS_KEY_ID": S3_KEYS["access_key"],
            "AWS_SECRET_ACCESS_KEY": S3_KEYS["secret_key"],
            "AWS_REGION": s3.region,
            "SECRET_KEY": "e" * 48,
            "WORK_DIR": str(work),
            "PLAYBACK_CACHE_DIR": str(work / "playback"),
            "SCHEDULER_ENABLED": "false",
        }
    )
    from heaters import adapters, migrations
    from heaters.settings import get_settings
    from heaters_workers.broker import setup_broker

    get_settings.cache_clear()
    adapters.get_storage.cache_clear()
    adapters.get_media_urls.cache_clear()
    adapters.get_redis.cache_clear()
    migrations.upgrade(get_settings().sqlalchemy_url)
    setup_broker(get_settings().redis_url)  # the keyframes message after each export goes to this Redis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    info = machine()
    load_start = load()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['ffmpeg']}")
    print(f"load average at start: {load_start}", flush=True)
    rng = random.Random(args.seed)
    lengths = plan_lengths(rng, args.clips, args.min_seconds, args.max_seconds)
    proxy = cached_proxy(source_seconds(lengths))
    segments = place(rng, lengths, proxy.frame_count)
    clip_seconds = float(sum(lengths) / proxy.fps)
    print(
        f"proxy: {proxy.path.relative_to(ROOT)}, {proxy.width}x{proxy.height} @ {proxy.fps}, {proxy.frame_count} "
        f"frames, {proxy.path.stat().st_size / 1e6:.0f} MB, audio: {proxy.has_audio}"
    )
    print(f"clips: {args.clips}, {clip_seconds:.1f} s in all ({min(lengths)}-{max(lengths)} frames), seed {args.seed}")

    with tempfile.TemporaryDirectory(prefix="heaters-bench-export-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)  # the embedded PostgreSQL runs as its own user
        pg = Postgres(tmp / "pg", free_port(), durable=False)
        rd = Redis(tmp / "redis", free_port(), persist=False)
        s3 = SeaweedS3(tmp / "s3", free_port(), **S3_KEYS)
        services = [pg, rd, s3]
        try:
            for service in services:
                service.start(timeout=60)
            use_services(pg, rd, s3, tmp / "work")
            result = run(args, proxy, segments, tmp, rng)
        finally:
            for service in reversed(services):
                service.stop()

    load_end = load()
    print(f"load average at end: {load_end}")
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "bench": "export",
        "machine": info,
        "load_average": {"start": load_start, "end": load_end},
        "args": vars(args),
        "proxy": {
            "frames": proxy.frame_count,
            "fps": str(proxy.fps),
            "size": [proxy.width, proxy.height],
            "bytes": proxy.path.stat().st_size,
        },
        "clip_seconds": round(clip_seconds, 2),
        **result,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "export.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {(OUT / 'export.json').relative_to(ROOT)}")
    if result["problems"]:
        raise SystemExit("checks failed:\n" + "\n".join(result["problems"][:20]))


def run(
    args: argparse.Namespace, proxy: Proxy, segments: list[tuple[int, int]], tmp: Path, rng: random.Random
) -> dict[str, Any]:
    from heaters.adapters import get_media_urls
    from heaters.clips.stages import URL_TTL_SECONDS
    from heaters.storage import keys

    _video_id, clip_ids = write_rows(proxy, lambda video_id: keys.proxy_key(TITLE, video_id), segments)
    jobs = [Job(i, s, e) for i, (s, e) in zip(clip_ids, segments, strict=True)]
    sample = sorted(rng.sample(jobs, min(SAMPLES, len(jobs))), key=lambda j: j.start)
    scratch = tmp / "local"
    scratch.mkdir()
    from sqlalchemy import text

    from heaters.db import get_engine

    with get_engine().connect() as connection:
        proxy_key = connection.execute(text("SELECT proxy_filepath FROM source_videos")).scalar_one()
    url = get_media_urls().get_url(proxy_key, expires_in=URL_TTL_SECONDS)  # what run_export hands ffmpeg
    methods = Methods(url, proxy, scratch, keep={j.clip_id for j in sample})
    named = {"ours": methods.ours, "plain": methods.plain, "reencode": methods.reencode}

    print(f"warm-up (one clip each, not counted); load {load()}", flush=True)
    for method in named.values():
        method(jobs[0])
    reset_exports(clip_ids)
    for leftover in scratch.iterdir():
        leftover.unlink()

    print(f"one at a time, interleaved: {len(jobs)} clips x 3 methods; load {load()}", flush=True)
    seq = interleaved(named, jobs)
    checks = {"sequential": check_exports(jobs, sample)}
    local_problems = check_local(scratch, "plain", sample) + check_local(scratch, "reencode", sample)
    shutil.rmtree(scratch)
    scratch.mkdir()

    print(f"{args.threads} threads: ours, then plain; load {load()}", flush=True)
    reset_exports(clip_ids)
    ours_mt = threaded("ours", methods.ours, jobs, args.threads)
    checks["threaded"] = check_exports(jobs, sample)
    methods.keep = set()
    plain_mt = threaded("plain", methods.plain, jobs, args.threads)

    reference = seq["ours"]
    labels = {
        "ours": "ours: run_stage(EXPORT), 1 at a time",
        "plain": "plain ffmpeg stream copy, 1 at a time",
        "reencode": "re-encode x264 veryfast crf23, 1 at a time",
    }
    rows = [row(seq[name], reference) | {"method": labels[name]} for name in ("ours", "plain", "reencode")]
    rows.append(row(ours_mt, reference) | {"method": f"ours: run_stage(EXPORT), {args.threads} threads"})
    rows.append(row(plain_mt, reference) | {"method": f"plain ffmpeg stream copy, {args.threads} threads"})
    print_table(rows)

    overhead = [o - p for o, p in zip(seq["ours"].seconds, seq["plain"].seconds, strict=True)]
    overhead_summary = {
        "p50_ms": round(1000 * percentile(overhead, 0.5), 1),
        "p95_ms": round(1000 * percentile(overhead, 0.95), 1),
        "mean_ms": round(1000 * statistics.fmean(overhead), 1),
    }
    ratio = seq["reencode"].wall / reference.wall
    print(
        f"\nour overhead per clip (ours - plain, same clip): p50 {overhead_summary['p50_ms']:.0f} ms, "
        f"p95 {overhead_summary['p95_ms']:.0f} ms, mean {overhead_summary['mean_ms']:.0f} ms"
    )
    print(f"re-encode / our export: {ratio:.1f}x the time (1 at a time)")
    print(
        f"{args.threads} threads: ours {reference.wall / ours_mt.wall:.2f}x the throughput of 1 at a time, "
        f"{float(sum(j.end - j.start for j in jobs) / proxy.fps) / ours_mt.wall:.1f} s of clips exported per second"
    )
    problems = checks["sequential"]["problems"] + checks["threaded"]["problems"] + local_problems
    for phase, found in checks.items():
        print(
            f"checks ({phase}): {found['exported']}/{len(jobs)} exported, {found['objects']} objects in clips/, "
            f"{found['ffprobed']} ffprobed, {len(found['problems'])} problems"
        )
    print(f"checks (local): {2 * len(sample)} plain/re-encode outputs ffprobed, {len(local_problems)} problems")
    final = checks["threaded"]
    if final["exported"] != len(jobs) or final["objects"] != len(jobs):
        problems.append(f"{final['exported']} exported and {final['objects']} objects instead of {len(jobs)}")
    return {
        "rows": rows,
        "overhead_per_clip": overhead_summary,
        "reencode_over_ours": round(ratio, 2),
        "checks": checks,
        "local_problems": local_problems,
        "per_clip_seconds": {name: [round(s, 4) for s in seq[name].seconds] for name in seq}
        | {"ours_threaded": [round(s, 4) for s in ours_mt.seconds]},
        "problems": problems,
    }


if __name__ == "__main__":
    main()
