"""The one place the Dramatiq broker is built, with its middleware in order."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from periodiq import PeriodiqMiddleware

# Our own attempts are counted in Postgres (job_claims), because Dramatiq does not count a message
# whose worker was SIGKILLed. Dramatiq's Retries stays for unexpected exceptions, kept small.
MAX_DRAMATIQ_RETRIES = 3
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def build_broker(redis_url: str) -> RedisBroker:
    broker = RedisBroker(url=redis_url, middleware=[])
    for middleware in (
        AgeLimit(),
        # Long media stages set their own time_limit; every subprocess has its own timeout as well,
        # since TimeLimit cannot interrupt a thread blocked in a child process.
        TimeLimit(time_limit=60 * 60 * 1000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=MAX_DRAMATIQ_RETRIES, min_backoff=5_000, max_backoff=300_000),
        CurrentMessage(),
        PeriodiqMiddleware(skip_delay=30),
        SweepWorkDirs(),
        DieWithParent(),
        PauseGate(),
    ):
        broker.add_middleware(middleware)
    return broker


def setup_broker(redis_url: str) -> RedisBroker:
    """Build the broker and make it the global one that actors and `heaters.jobs` use."""
    broker = build_broker(redis_url)
    dramatiq.set_broker(broker)
    return broker


class PauseGate(dramatiq.Middleware):
    """A paused queue's worker finishes its running messages and takes no new ones until resumed.

    Its consumers stop fetching (checked every second, and once before the worker boots, so a worker
    started while its queue is paused never runs a message of it); a message fetched just before the
    pause waits in `before_process_message` until the queue is resumed, unacknowledged, so a crash
    meanwhile hands it back to Redis.
    """

    def __init__(self) -> None:
        self.paused: set[str] = set()
        self.log = logging.getLogger("heaters.pause")

    def _read(self, broker: dramatiq.Broker) -> set[str]:
        from heaters import queue_control

        return queue_control.paused(broker.client)  # type: ignore[attr-defined]

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        try:
            self.paused = self._read(broker)
        except Exception as error:  # Redis away at boot: the watcher tries again every second
            self.log.warning("pause gate cannot read the paused queues: %s", error)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._watch, args=(broker, worker), name="pause-gate", daemon=True).start()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        from heaters import queue_control

        while message.queue_name.removesuffix(".DQ") in self.paused:
            time.sleep(queue_control.POLL_SECONDS)

    def _watch(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from heaters import queue_control

        consumed = worker.consumer_whitelist or set(worker.consumers) or broker.get_declared_queues()
        queues = {name.removesuffix(".DQ") for name in consumed}
        held = False
        while True:
            wanted = bool(queues & self.paused)
            if wanted != held:
                for consumer in worker.consumers.values():
                    consumer.pause() if wanted else consumer.resume()
                held = wanted
                self.log.info("queue.%s %s", "paused" if held else "resumed", ",".join(sorted(queues)))
            time.sleep(queue_control.POLL_SECONDS)
            try:
                self.paused = self._read(broker)
            except Exception as error:  # Redis away: keep the current state, try again next second
                self.log.warning("pause gate cannot read the paused queues: %s", error)


class SweepWorkDirs(dramatiq.Middleware):
    """At worker boot, remove work directories that this host's killed workers left behind."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from heaters.pipeline.runner import sweep_orphaned_work_dirs
        from heaters.settings import get_settings

        sweep_orphaned_work_dirs(get_settings().work_dir)


class DieWithParent(dramatiq.Middleware):
    """Dramatiq's forked worker processes outlive a killed main process; ask the kernel to end them too."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        if sys.platform != "linux":
            return
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the main process died before we asked: we were already adopted by init
            os._exit(1)
