"""Prometheus metrics: what every process counts, summed across processes, and what the state says at scrape.

Counters and histograms use prometheus-client's multiprocess mode when `PROMETHEUS_MULTIPROC_DIR` is set
(`heaters worker` and `heaters up` set it to `METRICS_DIR` for their children, so every Dramatiq process
and fork writes its own file there and a scrape adds them up). Queue depths, claims and the playback
cache are read from Redis, PostgreSQL and the disk when scraped, so they are right however many
processes run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

JOBS = Counter("heaters_jobs", "Stage runs, by how they ended", ["stage", "queue", "outcome"])
JOB_SECONDS = Histogram(
    "heaters_job_duration_seconds",
    "Wall time of stage runs that finished",
    ["stage", "queue"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600),
)
REVIEW_ACTIONS = Counter("heaters_review_actions", "Review actions taken", ["action"])
TEMP_CLIP_SECONDS = Histogram(
    "heaters_temp_clip_generate_seconds",
    "Time to cut one temp clip (claim to ready)",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30),
)


def outcome(stage: str, queue: str, result: str, seconds: float | None = None) -> None:
    JOBS.labels(stage, queue, result).inc()
    if seconds is not None:
        JOB_SECONDS.labels(stage, queue).observe(seconds)


class StateCollector(Collector):
    """Gauges read at scrape time from the systems that hold the truth."""

    def collect(self) -> Iterator[Any]:
        yield from self._queues()
        yield from self._claims()
        yield from self._cache()

    def _queues(self) -> Iterator[Any]:
        from heaters.adapters import get_redis
        from heaters.queues import Queue

        depth = GaugeMetricFamily("heaters_queue_messages", "Messages in a Dramatiq queue", labels=["queue", "kind"])
        redis = get_redis()
        for queue in Queue:
            for kind, name in (("ready", queue.value), ("delayed", f"{queue.value}.DQ"), ("dead", f"{queue.value}.XQ")):
                count: Any = redis.hlen(f"dramatiq:{name}.msgs")
                depth.add_metric([queue.value, kind], float(count))
        yield depth

    def _claims(self) -> Iterator[Any]:
        from sqlalchemy import text

        from heaters.db import unit_of_work

        claims = GaugeMetricFamily(
            "heaters_claims", "Pipeline work in job_claims, by stage and state", labels=["stage", "state"]
        )
        with unit_of_work() as session:
            rows = session.execute(
                text("SELECT stage, state, count(*) FROM job_claims WHERE stage NOT LIKE 'tick:%' GROUP BY 1, 2")
            ).all()
        for stage, state, count in rows:
            claims.add_metric([stage, state], float(count))
        yield claims

    def _cache(self) -> Iterator[Any]:
        from heaters.playback.cleanup import scan
        from heaters.settings import get_settings

        files = scan(get_settings().playback_cache_dir)
        yield GaugeMetricFamily(
            "heaters_playback_cache_bytes",
            "Bytes in this host's playback cache",
            value=float(sum(f.size for f in files)),
        )
        yield GaugeMetricFamily(
            "heaters_playback_cache_files", "Files in this host's playback cache", value=float(len(files))
        )


def render() -> tuple[bytes, str]:
    """The exposition text: every process's counters (summed) and the state gauges."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:  # a single process (tests, a web process alone): its own counters
        registry.register(_Own())
    registry.register(StateCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Own(Collector):
    def collect(self) -> Iterator[Any]:
        for metric in (JOBS, JOB_SECONDS, REVIEW_ACTIONS, TEMP_CLIP_SECONDS):
            yield from metric.collect()


def serve(host: str, port: int) -> None:
    """The worker host's /metrics on its own port, from a thread of the supervisor (no app, no session)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, content_type = render()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # scrapes every 15 s need no log line
            return

    server = ThreadingHTTPServer((host, port), Handler)
    Thread(target=server.serve_forever, name="metrics", daemon=True).start()


def prepare_dir(path: Path) -> dict[str, str]:
    """The directory for a process group's metric files, without the files of processes that are gone
    (they would add stale counts); a live process's files (the web's, on one host) stay."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        pid = old.stem.rsplit("_", 1)[-1]
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            old.unlink(missing_ok=True)
    return {MULTIPROC_ENV: str(path)}
