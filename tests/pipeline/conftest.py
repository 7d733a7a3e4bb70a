"""Pipeline fixtures: real `heaters worker` processes on the test services, and helpers to wait on them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from heaters.devstack.services import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
HEATERS = str(Path(sys.executable).with_name("heaters"))


@pytest.fixture(scope="session")
def broker(app_env: dict[str, str]) -> Any:
    """This process sends real messages to the test Redis, as the CLI and web app do."""
    from heaters_workers.broker import setup_broker

    return setup_broker(app_env["REDIS_URL"])


@pytest.fixture
def work_root(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def pipeline_env(app_env: dict[str, str], work_root: Path, broker: Any) -> dict[str, str]:
    """Settings for workers in a test: short leases so a crash heals in seconds, a private work dir."""
    env = {
        **os.environ,
        **app_env,
        "WORK_DIR": str(work_root),
        "JOB_LEASE_SECONDS": "10",
        "MASTER_ENABLED": "true",
        "JOB_MAX_ATTEMPTS": "3",
        "JOB_BACKOFF_SECONDS": "1",
    }
    _flush_queues(broker)
    return env


def _flush_queues(broker: Any) -> None:
    broker.flush_all()


class Worker:
    def __init__(self, env: dict[str, str], log: Path, queues: str) -> None:
        self.log = log
        self.out = log.open("ab")
        self.proc = subprocess.Popen(
            [HEATERS, "worker"],
            cwd=ROOT,
            env={**env, "WORKER_QUEUES": queues},
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def descendants(self) -> list[int]:
        """The supervisor and everything under it (its dramatiq children run in their own sessions)."""
        found, frontier = [self.proc.pid], [self.proc.pid]
        while frontier:
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", ",".join(map(str, frontier))], capture_output=True, text=True
            ).stdout
            frontier = [int(p) for p in out.split()]
            found += frontier
        return found

    def kill(self) -> None:
        """SIGKILL every process at once: no cleanup code runs anywhere, as in a crash or an OOM kill."""
        import signal

        for pid in self.descendants():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop_process_group(self.proc.pid, popen=self.proc, timeout=30)
        self.out.close()


@pytest.fixture
def start_worker(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(queues: str = "media_processing,default", **extra_env: str) -> Worker:
        worker = Worker({**pipeline_env, **extra_env}, tmp_path / f"worker{len(workers)}.log", queues)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, logs: list[Path] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = "".join(p.read_text()[-4000:] for p in logs or [] if p.exists())
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{tail}")
        time.sleep(0.25)


def video_row(engine: Engine, video_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM source_videos WHERE id = :i"), {"i": video_id}).mappings().one()
    return dict(row)


def clip_rows(engine: Engine, video_id: int) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = (
            connection.execute(
                text("SELECT * FROM clips WHERE source_video_id = :i ORDER BY start_frame"), {"i": video_id}
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def claim_row(engine: Engine, stage: str, entity_id: int) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = (
            connection.execute(
                text("SELECT * FROM job_claims WHERE stage = :s AND entity_id = :e"), {"s": stage, "e": entity_id}
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


@contextmanager
def collected_events(redis_url: str) -> Iterator[list[dict[str, Any]]]:
    """Every event published on the channel while the block runs (a real Redis subscription)."""
    import json
    import threading

    import redis

    from heaters.events import CHANNEL

    received: list[dict[str, Any]] = []
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message and message["type"] == "message":
                received.append(json.loads(message["data"]))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        stop.set()
        thread.join(timeout=2)
        pubsub.close()
        client.close()


def run_cli(env: dict[str, str], *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HEATERS, *args], cwd=ROOT, env=env, capture_output=True, text=True, input=input_text, timeout=300
    )
