"""Ingest benchmark: a long 1080p30 video with hard cuts, through the real pipeline, against plain FFmpeg.

Run:  .venv/bin/python bench/ingest.py [--seconds 600] [--cuts 40] [--chunk-seconds 20] [--workers 1,2]
                                       [--no-single-pass] [--no-master-baseline]

The proxy is encoded in chunks (PROXY_CHUNK_SECONDS, `--chunk-seconds`; the setting's default unless given),
each chunk a `video.encode_chunk` job any media_processing worker takes, and clips become `pending_review`
as the chunks' scans make them final. For each process count in `--workers` this starts throwaway services
(PostgreSQL, Redis, S3: a fresh database per run, so the same file is a new video each time), that many
`heaters worker` processes consuming media_processing (each its own process group and log) and one
consuming archival (the master), ingests the video with `heaters ingest`, and times from the moment the
original is stored and its encode queued (when that command returns, or when a worker starts the encode if
that comes first: the command commits, then exits):
* the first `pending_review` clip (the first `video.clips_ready` event for the video);
* all clips (the `video.clips_ready` whose count of the video's pending clips reaches its final clip count);
* the joined proxy (`video.join_proxy` finished) and the master (`video.encode_master` finished);
and counts, from each process's own log (`video.encode_chunk.finished` lines), the chunks it encoded.
With `--single-pass` (on by default) it runs the old path as well (PROXY_CHUNK_SECONDS=0, one process):
reviewable when `video.detect_scenes` finishes.

In the same run it times the plain single-pass ffmpeg proxy encode of the same file with the pipeline's
argv (`proxy_command`, the default CRF and preset): the baseline every ratio is against; and the plain
master (`master_command`) for the master's overhead. Every run's clip boundaries must be the source's
cut frames. Prints the machine, every figure, the ratios and the targets (first clip <= 15 s after the
upload is stored; all clips <= 1.05x the plain single-pass proxy encode; every cut exact) with pass/fail;
appends the result to bench/out/results.jsonl.

Everything runs on this machine and ffmpeg takes every core, so anything else running slows it: the load
average is printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark_video import make_benchmark_video  # noqa: E402

from heaters.devstack.postgres import Postgres  # noqa: E402
from heaters.devstack.redis import Redis  # noqa: E402
from heaters.devstack.seaweed import SeaweedS3  # noqa: E402
from heaters.devstack.service import free_port  # noqa: E402
from heaters.events import CHANNEL  # noqa: E402
from heaters.media.ffmpeg import PROXY_PRESET  # noqa: E402
from heaters.media.probe import probe  # noqa: E402
from heaters.settings import Settings  # noqa: E402
from heaters.supervisor import stop_process_group  # noqa: E402
from heaters.videos.encode import master_command, proxy_command  # noqa: E402

OUT = ROOT / "bench" / "out"
HEATERS = str(Path(sys.executable).with_name("heaters"))
PROXY_CRF = int(Settings.model_fields["proxy_crf"].default)
MASTER_CRF = int(Settings.model_fields["master_crf"].default)
DEFAULT_CHUNK_SECONDS = float(Settings.model_fields["proxy_chunk_seconds"].default)
TIMEOUT = 4 * 3600.0  # per wait: a stage of a 10-minute video on a slow machine stays well inside
BOOT_TIMEOUT = 180.0
READY_LINE = "Worker process is ready for action."  # Dramatiq's, once per worker process

TARGET_FIRST_CLIP_SECONDS = 15.0
TARGET_ALL_CLIPS_RATIO = 1.05

T = TypeVar("T")


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    )
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "node": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024**2, 1),
        "os": platform.platform(),
        "ffmpeg": ffmpeg,
        "python": platform.python_version(),
    }


def source_video(seconds: int, cuts: int) -> tuple[Path, list[int], int, float | None]:
    path = OUT / f"source_{seconds}s_{cuts}cuts_1080p30.mp4"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        data = json.loads(meta.read_text())
        return path, data["cut_frames"], data["frame_count"], None
    OUT.mkdir(parents=True, exist_ok=True)
    made = make_benchmark_video(path, seconds=seconds, cuts=cuts, timeout=4 * 3600)
    meta.write_text(json.dumps({"cut_frames": made.cut_frames, "frame_count": made.frame_count}))
    return path, made.cut_frames, made.frame_count, made.elapsed_seconds


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def timed(argv: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - started


class Events:
    """Every event on the channel, with the time it arrived."""

    def __init__(self, url: str) -> None:
        self.items: list[tuple[float, dict[str, Any]]] = []
        self._client = redis.Redis.from_url(url)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(CHANNEL)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message and message["type"] == "message":
                self.items.append((time.monotonic(), json.loads(message["data"])))

    def all(self, kind: str, stage: str | None = None) -> list[tuple[float, dict[str, Any]]]:
        return [
            (at, event)
            for at, event in list(self.items)
            if event["type"] == kind and (stage is None or event.get("stage") == stage)
        ]

    def first(
        self, kind: str, stage: str | None = None, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> tuple[float, dict[str, Any]] | None:
        for at, event in self.all(kind, stage):
            if where is None or where(event):
                return at, event
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pubsub.close()
        self._client.close()


def log_tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())


def wait_until(events: Events, found: Callable[[], T | None], what: str, timeout: float, logs: list[Path]) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value is not None:
            return value
        failed = events.first("stage.failed")
        if failed:
            raise SystemExit(f"pipeline failed: {failed[1]}\n{log_tails(logs)}")
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}\n{log_tails(logs)}")


def wait_for(events: Events, kind: str, stage: str, timeout: float, logs: list[Path]) -> tuple[float, dict[str, Any]]:
    return wait_until(events, lambda: events.first(kind, stage), f"{kind} {stage}", timeout, logs)


def stage_times(events: Events, stage: str, t0: float) -> dict[str, Any] | None:
    """One stage's runs: how many finished, the first start, the first and last end (from t0), their seconds added."""
    started = [at for at, _ in events.all("stage.started", stage)]
    finished = events.all("stage.finished", stage)
    if not finished:
        return None
    return {
        "count": len(finished),
        "start": min(started, default=finished[0][0]) - t0,
        "first_end": min(at for at, _ in finished) - t0,
        "end": max(at for at, _ in finished) - t0,
        "seconds": round(sum(float(event["seconds"]) for _, event in finished), 3),
    }


def heaters(argv: list[str], env: dict[str, str], logs: list[Path]) -> str:
    """A `heaters` command's stdout; its failure stops the benchmark with its stderr and the workers' logs."""
    done = subprocess.run([HEATERS, *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"heaters {' '.join(argv)} failed ({done.returncode}):\n{done.stderr}\n{log_tails(logs)}")
    return done.stdout


def start_worker(env: dict[str, str], queues: str, log: Path, metrics: Path) -> subprocess.Popen[bytes]:
    """`heaters worker` for `queues`, in its own process group, writing its own log (one JSON line a record)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [HEATERS, "worker"],
            env={**env, "WORKER_QUEUES": queues, "METRICS_DIR": str(metrics), "LOG_FORMAT": "json"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )


def wait_ready(workers: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    """Every worker's Dramatiq process has booted (one queue each, so one ready line each)."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        for proc, log in workers:
            if proc.poll() is not None:
                raise SystemExit(f"{log.name}: the worker exited with {proc.returncode}\n{log_tails([log])}")
        if all(READY_LINE in log.read_text(errors="replace") for _, log in workers):
            return
        time.sleep(0.2)
    raise SystemExit(f"the workers did not boot in {BOOT_TIMEOUT:g} s\n{log_tails([log for _, log in workers])}")


def finished_jobs(log: Path) -> dict[str, dict[str, Any]]:
    """Per stage, the jobs this process finished (`<stage>.finished` records of the stage runner) and their seconds.

    `heaters worker` prefixes each child's line with its name (`worker:media_processing | ...`)."""
    jobs: dict[str, dict[str, Any]] = {}
    for line in log.read_text(errors="replace").splitlines():
        _, _, body = line.partition(" | ")
        if not body.startswith("{"):
            continue
        try:
            record = json.loads(body)
        except json.JSONDecodeError:
            continue
        stage = record.get("job")
        if not stage or not str(record.get("message", "")).startswith(f"{stage}.finished "):
            continue
        entry = jobs.setdefault(stage, {"count": 0, "seconds": 0.0, "entities": []})
        entry["count"] += 1
        entry["seconds"] = round(entry["seconds"] + float(record.get("duration_s", 0.0)), 3)
        entry["entities"].append(record.get("entity_id"))
    return jobs


def run_pipeline(
    source: Path, tmp: Path, *, processes: int, chunk_seconds: float, master: bool = True
) -> dict[str, Any]:
    """One ingest on fresh services with `processes` media_processing workers; times from the stored upload."""
    tmp.mkdir(parents=True)
    pg = Postgres(tmp / "pg", free_port(), durable=False)
    rd = Redis(tmp / "redis", free_port(), persist=False)
    s3 = SeaweedS3(tmp / "s3", free_port(), access_key="BENCHKEY", secret_key="benchsecret123", bucket="bench")
    services = [pg, rd, s3]
    for service in services:
        service.start()
    workers: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    opened: list[Events] = []
    try:
        env = {
            **os.environ,
            "DATABASE_URL": pg.create_database("bench"),
            "REDIS_URL": rd.url,
            "S3_ENDPOINT_URL": s3.url,
            "S3_BUCKET": "bench",
            "AWS_ACCESS_KEY_ID": "BENCHKEY",
            "AWS_SECRET_ACCESS_KEY": "benchsecret123",
            "SECRET_KEY": "b" * 40,
            "WORK_DIR": str(tmp / "work"),
            "SCHEDULER_ENABLED": "false",
            "MASTER_ENABLED": "true" if master else "false",
            "PROXY_CHUNK_SECONDS": f"{chunk_seconds:g}",
        }
        heaters(["db", "upgrade"], env, [])
        queues = [f"media_{n}" for n in range(1, processes + 1)]
        for name in [*queues, *(["archival"] if master else [])]:
            log = tmp / f"worker_{name}.log"
            consumed = "archival" if name == "archival" else "media_processing"
            workers.append((name, start_worker(env, consumed, log, tmp / f"metrics_{name}"), log))
        logs = [log for _, _, log in workers]
        wait_ready([(proc, log) for _, proc, log in workers])
        events = Events(rd.url)
        opened.append(events)
        time.sleep(0.5)  # the subscription is in place before anything is published
        t0 = time.monotonic()
        video_id = int(heaters(["ingest", str(source), "--title", "bench"], env, logs).strip())
        t_returned = time.monotonic()
        chunked = chunk_seconds > 0

        def for_video(event: dict[str, Any]) -> bool:
            return event.get("video_id") == video_id

        reviewable_stage = "video.join_proxy" if chunked else "video.detect_scenes"
        wait_for(events, "stage.finished", reviewable_stage, TIMEOUT, logs)
        if master:
            wait_for(events, "stage.finished", "video.encode_master", TIMEOUT, logs)
        # The upload is stored (and its encode queued) when `heaters ingest` commits; the command returns a
        # little later (a loaded machine: seconds later), and the encode may start before it does.
        t_stored = min(t_returned, wait_for(events, "stage.started", "video.encode", 10, logs)[0])
        shown = json.loads(heaters(["videos", "show", str(video_id), "--json"], env, logs))
        total_clips = len(shown["clips"])
        first_clip = wait_until(
            events, lambda: events.first("video.clips_ready", where=for_video), "video.clips_ready", 10, logs
        )
        all_clips = wait_until(
            events,
            lambda: events.first(
                "video.clips_ready", where=lambda e: for_video(e) and int(e["video_pending"]) >= total_clips
            ),
            f"video.clips_ready with {total_clips} clips pending",
            10,
            logs,
        )
        stages = {
            stage: stage_times(events, stage, t_stored)
            for stage in (
                "video.encode",
                "video.encode_chunk",
                "video.join_proxy",
                "video.detect_scenes",
                "video.encode_master",
            )
        }
        chunk_events = events.all("video.chunks")
        releases = [
            {"at": at - t_stored, "clips": event["clips"], "video_pending": event["video_pending"]}
            for at, event in events.all("video.clips_ready")
            if for_video(event)
        ]
    finally:
        for listener in opened:
            listener.close()
        for _, proc, _ in reversed(workers):
            stop_process_group(proc.pid, popen=proc, timeout=30)
        for service in reversed(services):
            service.stop()
    per_process = {name: finished_jobs(log) for name, _, log in workers}
    return {
        "processes": processes,
        "chunk_seconds": chunk_seconds,
        "ingest_seconds": t_returned - t0,
        "ingest_returned_after_stored": t_returned - t_stored,
        "first_clip": first_clip[0] - t_stored,
        "all_clips": all_clips[0] - t_stored,
        "releases": releases,
        "chunks_total": max((int(e.get("total", 0)) for _, e in chunk_events), default=0),
        "stages": stages,
        "per_process": per_process,
        "video": shown,
    }


def cuts_check(video: dict[str, Any], cut_frames: list[int]) -> dict[str, Any]:
    """The clips tile [0, frame_count) and their boundaries are the source's cut frames, no more, no fewer."""
    clips = video["clips"]
    boundaries = [c["start_frame"] for c in clips[1:]]
    tiled = (
        bool(clips)
        and clips[0]["start_frame"] == 0
        and clips[-1]["end_frame"] == video["frame_count"]
        and all(a["end_frame"] == b["start_frame"] for a, b in pairwise(clips))
    )
    return {
        "exact": tiled and boundaries == cut_frames,
        "tiled": tiled,
        "found": len(boundaries),
        "made": len(cut_frames),
        "missing": sorted(set(cut_frames) - set(boundaries)),
        "extra": sorted(set(boundaries) - set(cut_frames)),
    }


def worker_counts(value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of process counts") from None
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError("process counts must be 1 or more")
    return list(dict.fromkeys(counts))


def passed(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--cuts", type=int, default=40)
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=DEFAULT_CHUNK_SECONDS,
        help=f"PROXY_CHUNK_SECONDS for the chunked runs (default: the setting's, {DEFAULT_CHUNK_SECONDS:g})",
    )
    parser.add_argument(
        "--workers",
        type=worker_counts,
        default=[1, 2],
        help="media_processing process counts, one chunked run each (default: 1,2)",
    )
    parser.add_argument(
        "--single-pass",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the old path (PROXY_CHUNK_SECONDS=0, one process)",
    )
    parser.add_argument(
        "--master",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the archival master in each ingest (--no-master: faster; it never delays the clips)",
    )
    parser.add_argument(
        "--master-baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the plain master encode (for the master's overhead ratio)",
    )
    args = parser.parse_args()
    if args.chunk_seconds <= 0:
        parser.error("--chunk-seconds must be positive (the single pass is --single-pass)")

    info = machine()
    load_start = load_average()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['ffmpeg']}")
    print(f"load average at start: {load_start[0]}, {load_start[1]}, {load_start[2]}")
    source, cut_frames, _made_frames, generated = source_video(args.seconds, args.cuts)
    media = probe(source, timeout=120)
    duration = media.duration_seconds
    print(
        f"source: {source.name}, {media.width}x{media.height} @ {media.fps}, {duration:.1f} s, "
        f"{source.stat().st_size / 1e6:.0f} MB" + (f" (generated in {generated:.0f} s)" if generated else "")
    )

    plan = [(f"chunked x{n}", n, args.chunk_seconds) for n in args.workers]
    if args.single_pass:
        plan.append(("single pass", 1, 0.0))
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="heaters-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)  # the embedded PostgreSQL runs as its own user
        for number, (label, processes, chunk_seconds) in enumerate(plan, start=1):
            print(f"run {number}/{len(plan)}: {label} ...", flush=True)
            runs[label] = run_pipeline(
                source, tmp / f"run{number}", processes=processes, chunk_seconds=chunk_seconds, master=args.master
            )
        base_proxy = timed(proxy_command(source, tmp / "baseline_proxy.mp4", media, crf=PROXY_CRF))
        base_master = None
        if args.master_baseline and args.master:
            base_master = timed(master_command(source, tmp / "baseline_master.mp4", crf=MASTER_CRF))
    load_end = load_average()

    labels = list(runs)
    chunked_labels = [label for label in labels if runs[label]["chunk_seconds"] > 0]
    frames = next(iter(runs.values()))["video"]["frame_count"]
    cuts = {label: cuts_check(run["video"], cut_frames) for label, run in runs.items()}

    def stage(run: dict[str, Any], key: str, field: str) -> float | None:
        times = run["stages"].get(key)
        return None if times is None else float(times[field])

    def reviewable(run: dict[str, Any]) -> float:
        """All clips pending_review; in a single pass that is when detect_scenes finishes."""
        if run["chunk_seconds"] > 0:
            return float(run["all_clips"])
        return stage(run, "video.detect_scenes", "end") or float(run["all_clips"])

    rows: dict[str, dict[str, float | None]] = {
        "ingest (heaters ingest: hash + upload original)": {k: r["ingest_seconds"] for k, r in runs.items()},
        "heaters ingest returned (after the stored upload)": {
            k: r["ingest_returned_after_stored"] for k, r in runs.items()
        },
        "encode started (video.encode, from the stored upload)": {
            k: stage(r, "video.encode", "start") for k, r in runs.items()
        },
        "first chunk encoded (video.encode_chunk finished)": {
            k: stage(r, "video.encode_chunk", "first_end") for k, r in runs.items()
        },
        "first clip pending_review (from the stored upload)": {k: r["first_clip"] for k, r in runs.items()},
        "all clips pending_review (reviewable)": {k: reviewable(r) for k, r in runs.items()},
        "proxy done (join_proxy / encode finished)": {
            k: stage(r, "video.join_proxy" if r["chunk_seconds"] > 0 else "video.encode", "end")
            for k, r in runs.items()
        },
        "master done (encode_master finished)": {k: stage(r, "video.encode_master", "end") for k, r in runs.items()},
        "stage video.encode (plan / single-pass encode)": {
            k: stage(r, "video.encode", "seconds") for k, r in runs.items()
        },
        "stage video.encode_chunk (all chunks, added)": {
            k: stage(r, "video.encode_chunk", "seconds") for k, r in runs.items()
        },
        "stage video.join_proxy": {k: stage(r, "video.join_proxy", "seconds") for k, r in runs.items()},
        "stage video.detect_scenes": {k: stage(r, "video.detect_scenes", "seconds") for k, r in runs.items()},
        "stage video.encode_master": {k: stage(r, "video.encode_master", "seconds") for k, r in runs.items()},
    }

    def cell(value: float | None) -> str:
        return f"{value:>13.1f}" if value is not None else f"{'-':>13}"

    print(f"\nchunks of {args.chunk_seconds:g} s; seconds (from the stored upload for 'pending_review' and 'done'):")
    print(f"{'what':<52}" + "".join(f"{label:>13}" for label in labels))
    for name, values in rows.items():
        print(f"{name:<52}" + "".join(cell(values.get(label)) for label in labels))
    print(
        f"\nbaseline, plain ffmpeg in the same run: proxy (proxy_command, {PROXY_PRESET}, CRF {PROXY_CRF}) "
        f"{base_proxy:.1f} s ({frames / base_proxy:.1f} fps, {base_proxy / duration:.3f}x duration)"
        + (f"; master (CRF {MASTER_CRF}) {base_master:.1f} s" if base_master is not None else "")
    )

    print("\nchunks per process (video.encode_chunk.finished in each worker's log):")
    for label in chunked_labels:
        run = runs[label]
        parts = []
        for name, jobs in run["per_process"].items():
            if name == "archival":
                continue
            done = jobs.get("video.encode_chunk", {"count": 0, "seconds": 0.0})
            others = ", ".join(k.removeprefix("video.") for k in jobs if k != "video.encode_chunk")
            parts.append(f"{name} {done['count']} ({done['seconds']:.1f} s{'; ' + others if others else ''})")
        counted = sum(j.get("video.encode_chunk", {}).get("count", 0) for j in run["per_process"].values())
        print(f"  {label}: {run['chunks_total']} chunks; " + "; ".join(parts) + f"; counted {counted}")

    print("\nratios:")
    ratios: dict[str, dict[str, float | None]] = {
        "all clips / plain single-pass proxy": {k: reviewable(r) / base_proxy for k, r in runs.items()},
        "all clips / video duration": {k: reviewable(r) / duration for k, r in runs.items()},
        "first clip seconds": {k: r["first_clip"] for k, r in runs.items()},
        "master stage / plain master": {
            k: (m / base_master if (m := stage(r, "video.encode_master", "seconds")) and base_master else None)
            for k, r in runs.items()
        },
    }
    if "single pass" in runs:
        single = reviewable(runs["single pass"])
        ratios["single-pass reviewable / all clips"] = {k: single / reviewable(runs[k]) for k in chunked_labels}
    for name, values in ratios.items():
        print(f"  {name:<50}" + "  ".join(f"{k} {v:.3f}" for k, v in values.items() if v is not None))

    print(
        "\ncuts: "
        + "; ".join(
            f"{label} {c['found']} found, {c['made']} made, exact: {c['exact']}"
            + (f" (missing {c['missing']}, extra {c['extra']}, tiled {c['tiled']})" if not c["exact"] else "")
            for label, c in cuts.items()
        )
    )
    targets: dict[str, dict[str, bool]] = {
        f"first clip <= {TARGET_FIRST_CLIP_SECONDS:g} s after the upload is stored": {
            k: runs[k]["first_clip"] <= TARGET_FIRST_CLIP_SECONDS for k in chunked_labels
        },
        f"all clips <= {TARGET_ALL_CLIPS_RATIO:g}x the plain single-pass proxy": {
            k: reviewable(runs[k]) / base_proxy <= TARGET_ALL_CLIPS_RATIO for k in chunked_labels
        },
        "every cut exact": {k: c["exact"] for k, c in cuts.items()},
    }
    print("targets:")
    for name, results in targets.items():
        print(f"  {name:<52}" + "  ".join(f"{k} {passed(ok)}" for k, ok in results.items()))
    print(f"load average at end: {load_end[0]}, {load_end[1]}, {load_end[2]}")

    OUT.mkdir(parents=True, exist_ok=True)
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "bench": "ingest",
        "machine": info,
        "load_average": {"start": load_start, "end": load_end},
        "source": {"name": source.name, "seconds": args.seconds, "cuts": args.cuts},
        "duration": duration,
        "frames": frames,
        "chunk_seconds": args.chunk_seconds,
        "baseline": {"proxy": base_proxy, "master": base_master, "proxy_preset": PROXY_PRESET, "proxy_crf": PROXY_CRF},
        "rows": rows,
        "ratios": ratios,
        "targets": targets,
        "cuts": cuts,
        "runs": {
            label: {
                "processes": run["processes"],
                "chunk_seconds": run["chunk_seconds"],
                "chunks_total": run["chunks_total"],
                "ingest_seconds": run["ingest_seconds"],
                "ingest_returned_after_stored": run["ingest_returned_after_stored"],
                "first_clip": run["first_clip"],
                "all_clips": run["all_clips"],
                "releases": run["releases"],
                "stages": run["stages"],
                "per_process": {
                    name: {stage: {"count": j["count"], "seconds": j["seconds"]} for stage, j in jobs.items()}
                    for name, jobs in run["per_process"].items()
                },
                "clips": len(run["video"]["clips"]),
            }
            for label, run in runs.items()
        },
    }
    with (OUT / "results.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
