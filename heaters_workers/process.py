"""`heaters worker`: one Dramatiq process per queue, so each queue gets exactly its own concurrency,
plus the scheduler when SCHEDULER_ENABLED says so (by default: when the `default` queue is consumed)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from heaters import metrics
from heaters.errors import ConfigError
from heaters.queues import CONCURRENCY, Queue, allowed_names, parse_queues, scheduler_wanted
from heaters.settings import get_settings
from heaters.supervisor import ProcessGroup

# Queues whose messages run for minutes: a busy process must not hoard messages another could run.
LONG_RUNNING = {Queue.MEDIA_PROCESSING, Queue.EXPORTS, Queue.ARCHIVAL}


def worker_argv(queue: Queue) -> list[str]:
    dramatiq = str(Path(sys.executable).with_name("dramatiq"))
    threads = CONCURRENCY[queue]
    return [
        dramatiq,
        "heaters_workers.run",
        "--queues",
        queue.value,
        "--processes",
        "1",
        "--threads",
        str(threads),
    ]


# Queues a reviewer waits on: an idle Dramatiq consumer polls Redis with a backoff of up to
# `dramatiq_worker_timeout` (1 s by default), and a finished message is acknowledged (and the next one
# fetched, with prefetch 1) only when that wait ends. That would add up to a second to every temp clip, and
# to every chunk of a chunked proxy (measured: 0.42 s a chunk, 13 s of a 10-minute video's 30 chunks).
LATENCY_SENSITIVE = {Queue.TEMP_CLIPS, Queue.MEDIA_PROCESSING}
IDLE_POLL_MS = 50


def worker_env(queue: Queue) -> dict[str, str]:
    env: dict[str, str] = {}
    if queue in LONG_RUNNING:
        env["dramatiq_queue_prefetch"] = str(CONCURRENCY[queue])
    if queue in LATENCY_SENSITIVE:
        env["dramatiq_worker_timeout"] = str(IDLE_POLL_MS)
    return env


def run_workers() -> int:
    settings = get_settings()
    queues = parse_queues(settings.worker_queues)
    if not queues:
        raise ConfigError(f"WORKER_QUEUES names no queue. Allowed: {', '.join(allowed_names())}")
    group = ProcessGroup(stop_timeout=30.0)
    metrics_env = metrics.prepare_dir(settings.metrics_dir)  # every child counts into one directory
    os.environ.update(metrics_env)
    if settings.metrics_port:
        metrics.serve(settings.bind_host, settings.metrics_port)
    for queue in queues:
        group.start(
            f"worker:{queue.value}",
            worker_argv(queue),
            env={**worker_env(queue), **metrics_env},
            stop_leader_only=True,  # Dramatiq stops its worker processes itself, letting running jobs finish
        )
    if scheduler_wanted(settings.scheduler_enabled, queues):
        # However many processes run a schedule, each tick is claimed once in Postgres.
        group.start("scheduler", [str(Path(sys.executable).with_name("heaters")), "scheduler"])
    return group.run()
