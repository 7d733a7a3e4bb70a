"""Ingest benchmark: a long 1080p30 video with hard cuts, through the real pipeline, against plain FFmpeg.

Run:  .venv/bin/python bench/ingest.py [--seconds 600] [--cuts 40]

It starts throwaway services (PostgreSQL, Redis, S3) and one `heaters worker` consuming media_processing and archival,
ingests the video with `heaters ingest`, and times each stage from the worker's own stage events. Then it
runs the same proxy and master ffmpeg commands standalone on the same file, in the same run, for the
overhead ratios. Prints the machine, every figure, and the ratios; appends the result to
bench/out/results.jsonl.
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
from pathlib import Path
from typing import Any

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
from heaters.media.probe import probe  # noqa: E402
from heaters.supervisor import stop_process_group  # noqa: E402
from heaters.videos.encode import master_command, proxy_command  # noqa: E402

OUT = ROOT / "bench" / "out"
HEATERS = str(Path(sys.executable).with_name("heaters"))


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

    def first(self, kind: str, stage: str | None = None) -> tuple[float, dict[str, Any]] | None:
        for at, event in self.items:
            if event["type"] == kind and (stage is None or event.get("stage") == stage):
                return at, event
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pubsub.close()
        self._client.close()


def wait_for(events: Events, kind: str, stage: str, timeout: float, worker_log: Path) -> tuple[float, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events.first(kind, stage)
        if found:
            return found
        failed = events.first("stage.failed")
        if failed:
            raise SystemExit(f"pipeline failed: {failed[1]}\n{worker_log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {kind} {stage}\n{worker_log.read_text()[-3000:]}")


def run_pipeline(source: Path, tmp: Path) -> dict[str, Any]:
    pg = Postgres(tmp / "pg", free_port(), durable=False)
    rd = Redis(tmp / "redis", free_port(), persist=False)
    s3 = SeaweedS3(tmp / "s3", free_port(), access_key="BENCHKEY", secret_key="benchsecret123", bucket="bench")
    services = [pg, rd, s3]
    for service in services:
        service.start()
    worker = None
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
            "WORKER_QUEUES": "media_processing,archival",
            "SCHEDULER_ENABLED": "false",
            "MASTER_ENABLED": "true",
        }
        subprocess.run([HEATERS, "db", "upgrade"], env=env, check=True, capture_output=True)
        log = tmp / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [HEATERS, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
            )
        time.sleep(3)  # the worker boots before the clock starts
        events = Events(rd.url)
        t0 = time.monotonic()
        ingest = subprocess.run(
            [HEATERS, "ingest", str(source), "--title", "bench"], env=env, capture_output=True, text=True, check=True
        )
        t_ingested = time.monotonic()
        video_id = int(ingest.stdout.strip())
        stages = {}
        for stage in ("video.encode", "video.detect_scenes", "video.encode_master"):
            started, _ = wait_for(events, "stage.started", stage, 4 * 3600, log)
            finished, event = wait_for(events, "stage.finished", stage, 4 * 3600, log)
            stages[stage] = {"start": started - t0, "end": finished - t0, "seconds": event["seconds"]}
        events.close()
        shown = json.loads(
            subprocess.run(
                [HEATERS, "videos", "show", str(video_id), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        return {"ingest_seconds": t_ingested - t0, "stages": stages, "video": shown}
    finally:
        if worker is not None:
            stop_process_group(worker.pid, popen=worker, timeout=30)
        for service in reversed(services):
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--cuts", type=int, default=40)
    args = parser.parse_args()

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['ffmpeg']}")
    source, cut_frames, _made_frames, generated = source_video(args.seconds, args.cuts)
    media = probe(source, timeout=120)
    duration = media.duration_seconds
    print(
        f"source: {source.name}, {media.width}x{media.height} @ {media.fps}, {duration:.1f} s, "
        f"{source.stat().st_size / 1e6:.0f} MB" + (f" (generated in {generated:.0f} s)" if generated else "")
    )

    with tempfile.TemporaryDirectory(prefix="heaters-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)  # the embedded PostgreSQL runs as its own user
        result = run_pipeline(source, tmp)
        base_proxy = timed(proxy_command(source, tmp / "baseline_proxy.mp4", media, crf=28))
        base_master = timed(master_command(source, tmp / "baseline_master.mp4", crf=18))

    video = result["video"]
    stages = result["stages"]
    frames = video["frame_count"]
    boundaries = [c["start_frame"] for c in video["clips"][1:]]
    exact = boundaries == cut_frames
    reviewable = stages["video.detect_scenes"]["end"]
    total = stages["video.encode_master"]["end"]
    encode, master = stages["video.encode"]["seconds"], stages["video.encode_master"]["seconds"]
    rows = {
        "ingest (hash + upload original)": result["ingest_seconds"],
        "encode proxy (stage)": encode,
        "detect scenes (stage)": stages["video.detect_scenes"]["seconds"],
        "encode master (stage)": master,
        "reviewable (proxy in S3, clips pending_review)": reviewable,
        "total (including master)": total,
    }
    print(f"\n{'what':<50} {'seconds':>9} {'x duration':>11}")
    for name, seconds in rows.items():
        print(f"{name:<50} {seconds:>9.1f} {seconds / duration:>11.3f}")
    print(f"\n{'encode':<10} {'ours fps':>9} {'plain ffmpeg fps':>17} {'overhead ratio':>15}")
    print(f"{'proxy':<10} {frames / encode:>9.1f} {frames / base_proxy:>17.1f} {encode / base_proxy:>15.3f}")
    print(f"{'master':<10} {frames / master:>9.1f} {frames / base_master:>17.1f} {master / base_master:>15.3f}")
    print(f"\ncuts: {len(boundaries)} found, {len(cut_frames)} made, exact: {exact}")
    print(
        f"targets: reviewable <= 0.35x: {reviewable / duration <= 0.35}; total <= 1.0x: {total / duration <= 1.0}; "
        f"overhead <= 1.1: proxy {encode / base_proxy <= 1.1}, master {master / base_master <= 1.1}"
    )

    OUT.mkdir(parents=True, exist_ok=True)
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": info,
        "duration": duration,
        "frames": frames,
        "rows": rows,
        "baseline": {"proxy": base_proxy, "master": base_master},
        "cuts_exact": exact,
        "cuts_found": len(boundaries),
        "cuts_made": len(cut_frames),
    }
    with (OUT / "results.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
