"""The one place the Dramatiq broker is built, with its middleware in order."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import dramatiq
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
    ):
        broker.add_middleware(middleware)
    return broker


def setup_broker(redis_url: str) -> RedisBroker:
    """Build the broker and make it the global one that actors and `heaters.jobs` use."""
    broker = build_broker(redis_url)
    dramatiq.set_broker(broker)
    return broker


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
