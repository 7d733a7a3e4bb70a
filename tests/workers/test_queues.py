"""Queue selection: pure parsing rules, and `heaters worker` refusing an unknown queue at boot."""

from __future__ import annotations

import sys

import pytest

from heaters.errors import ConfigError
from heaters.queues import CONCURRENCY, Queue, parse_queues, scheduler_wanted
from heaters_workers.process import worker_argv, worker_env
from tests.fixtures.workers import run_cli


def test_unset_means_every_queue() -> None:
    assert parse_queues(None) == list(Queue)
    assert set(CONCURRENCY) == set(Queue)


def test_blanks_and_duplicates_are_ignored_and_order_kept() -> None:
    assert parse_queues(" exports, ,default,exports ,") == [Queue.EXPORTS, Queue.DEFAULT]
    assert parse_queues("") == []


def test_unknown_names_are_named_with_the_allowed_list() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_queues("default,exprots,media")
    message = str(raised.value)
    assert "unknown queue(s): exprots, media" in message
    assert "Allowed: archival, background_jobs, default, exports, maintenance, media_processing, temp_clips" in message


def test_the_scheduler_follows_the_default_queue_unless_told() -> None:
    assert scheduler_wanted(None, [Queue.DEFAULT, Queue.EXPORTS])
    assert not scheduler_wanted(None, [Queue.MEDIA_PROCESSING])
    assert scheduler_wanted(True, [Queue.MEDIA_PROCESSING])
    assert not scheduler_wanted(False, [Queue.DEFAULT])


def test_long_queues_prefetch_one_message_per_thread() -> None:
    assert worker_env(Queue.MEDIA_PROCESSING) == {"dramatiq_queue_prefetch": "1", "dramatiq_worker_timeout": "50"}
    assert worker_env(Queue.ARCHIVAL) == {"dramatiq_queue_prefetch": "1"}
    assert worker_env(Queue.DEFAULT) == {}
    argv = worker_argv(Queue.EXPORTS)
    assert argv[argv.index("--queues") + 1] == "exports"
    assert argv[argv.index("--threads") + 1] == str(CONCURRENCY[Queue.EXPORTS])


def test_worker_exits_nonzero_naming_an_unknown_queue(app_env: dict[str, str]) -> None:
    import os

    result = run_cli({**os.environ, **app_env, "WORKER_QUEUES": "default,exports,bogus"}, "worker")
    assert result.returncode == 1
    assert "WORKER_QUEUES names unknown queue(s): bogus" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_killed_worker_supervisor_takes_its_processes_with_it(app_env: dict[str, str]) -> None:
    """SIGKILL (an OOM kill, a crashed container) skips every cleanup handler; nothing may live on."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    heaters = str(Path(sys.executable).with_name("heaters"))
    env = {**os.environ, **app_env, "WORKER_QUEUES": "default,exports", "SCHEDULER_ENABLED": "false"}
    supervisor = subprocess.Popen(
        [heaters, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )

    def family() -> list[int]:
        found, frontier = [], [supervisor.pid]
        while frontier:
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", ",".join(map(str, frontier))], capture_output=True, text=True
            ).stdout
            frontier = [int(p) for p in out.split()]
            found += frontier
        return found

    deadline = time.monotonic() + 60
    while len(family()) < 4 and time.monotonic() < deadline:  # two dramatiq mains, each with a worker process
        time.sleep(0.2)
    children = family()
    assert len(children) >= 4, children
    os.kill(supervisor.pid, signal.SIGKILL)
    supervisor.wait(timeout=10)
    deadline = time.monotonic() + 15
    while (
        any(
            Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
            for pid in children
        )
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    alive = [
        pid
        for pid in children
        if Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    ]
    assert alive == []
