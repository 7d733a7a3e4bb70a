"""Runs one stage for one entity: claim, heartbeat, work directory, failure policy.

Actors call `run_stage`; it never raises for a failure of the work itself: the claim row and the
entity's state record it, and a retry is scheduled with backoff until the attempts run out.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from heaters import events, metrics
from heaters.db import get_engine, unit_of_work
from heaters.errors import HeatersError, InvalidTransition, LeaseLost, NotFound, PermanentError
from heaters.pipeline import claims, entities
from heaters.pipeline.stages import Stage
from heaters.settings import Settings, get_settings
from heaters.storage.s3 import redact_signed_urls

log = logging.getLogger(__name__)

FailureHandler = Callable[[Session, int, str], None]
RetryNote = Callable[[Session, int, str], None]


@dataclass
class StageContext:
    stage: Stage
    entity_id: int
    work_dir: Path
    claim: claims.Claim
    settings: Settings
    on_progress: Callable[[float], None] | None = None
    lost: threading.Event = field(default_factory=threading.Event)
    completed: bool = field(default=False, init=False)

    def complete(self, session: Session) -> None:
        """Mark the work done inside the transaction that writes its results.

        A worker whose lease was taken over gets LeaseLost here, which rolls its results back with it.
        """
        claims.succeed(session, self.claim)
        self.completed = True

    def check(self) -> None:
        """Stop long work (and any upload) as soon as the heartbeat finds the claim taken over."""
        if self.lost.is_set():
            raise LeaseLost(f"{self.stage.key} {self.entity_id}: the lease was lost; stopping")

    def progress(self, percent: float) -> None:
        self.check()
        if self.on_progress is not None:
            self.on_progress(percent)


def error_message(error: BaseException) -> str:
    """One line a human can act on: our own errors are written for people; others get their type.

    Signed URLs are cut to their path: tool errors quote their input, and a signature is a credential.
    """
    if isinstance(error, HeatersError):
        return redact_signed_urls(str(error))
    text = str(error).strip().splitlines()
    return redact_signed_urls(f"{type(error).__name__}: {text[-1] if text else 'no details'}")


def _host_tag() -> str:
    return socket.gethostname().replace("-", "_")


@contextmanager
def work_directory(root: Path, stage: Stage, entity_id: int) -> Iterator[Path]:
    """One directory per job, removed when the job ends however it ends."""
    name = f"{stage.key.replace('.', '_')}-{entity_id}-{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path = root / name
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """A zombie (killed, not yet reaped) counts as dead: it will never finish its job."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def sweep_orphaned_work_dirs(root: Path) -> list[Path]:
    """Remove work directories this host's dead processes left behind (a SIGKILL skips `finally`)."""
    removed: list[Path] = []
    if not root.is_dir() or not Path("/proc/self").exists():  # without /proc we cannot tell who is alive
        return removed
    host = _host_tag()
    for path in root.iterdir():
        parts = path.name.split("-")
        if len(parts) != 5 or parts[2] != host or not parts[3].isdigit():
            continue
        pid = int(parts[3])
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


class ProgressReporter:
    """Write progress at most once a second (or per whole percent) and publish it as an event."""

    def __init__(self, write: Callable[[float], None], *, min_interval: float = 1.0) -> None:
        self.write, self.min_interval = write, min_interval
        self.last_value, self.last_time = -100.0, 0.0

    def __call__(self, percent: float) -> None:
        now = time.monotonic()
        if percent < 100 and now - self.last_time < self.min_interval and percent - self.last_value < 1:
            return
        self.last_value, self.last_time = percent, now
        self.write(percent)


def run_stage(
    stage: Stage,
    entity_id: int,
    work: Callable[[StageContext], None],
    *,
    on_final_failure: FailureHandler | None = None,
    on_retry: RetryNote | None = None,
    on_progress: Callable[[int, float], None] | None = None,
) -> None:
    """The entity's failure, retry and progress writes default to the stage's declaration (`entities`)."""
    on_final_failure = on_final_failure or entities.failure_handler(stage)
    on_retry = on_retry or entities.note_retry(stage)
    on_progress = on_progress or entities.progress_writer(stage)
    settings = get_settings()
    engine = get_engine()
    worker = claims.worker_identity()
    with unit_of_work() as session:
        claim = claims.claim(session, stage, entity_id, lease_seconds=settings.job_lease_seconds, worker_id=worker)
        if claim is not None and claims.give_up_if_exhausted(session, claim, settings.job_max_attempts):
            on_final_failure(
                session,
                entity_id,
                f"Gave up after {settings.job_max_attempts} attempts: the worker stopped each time "
                "(crashed, killed, or out of memory).",
            )
            claim = None
    if claim is None:
        log.info("%s.skipped %s: already queued elsewhere, running, done or failed", stage.key, entity_id)
        return

    progress = None
    if on_progress is not None:
        report = on_progress
        progress = ProgressReporter(lambda pct: report(entity_id, pct))
    started = time.monotonic()
    fields: dict[str, object] = {
        "job": stage.key,
        "queue": stage.queue.value,
        "entity": stage.entity.value,
        "entity_id": entity_id,
    }
    log.info(
        "%s.started %s (attempt %s)", stage.key, entity_id, claim.attempts, extra={**fields, "attempt": claim.attempts}
    )
    events.publish(
        "stage.started", topics=stage.topics(entity_id), stage=stage.key, entity_id=entity_id, attempt=claim.attempts
    )
    try:
        with (
            claims.heartbeat(engine, claim, settings.job_lease_seconds) as lost,
            work_directory(settings.work_dir, stage, entity_id) as work_dir,
        ):
            context = StageContext(stage, entity_id, work_dir, claim, settings, progress, lost)
            work(context)
        if not context.completed:
            with unit_of_work() as session:
                claims.succeed(session, claim)
        elapsed = time.monotonic() - started
        metrics.outcome(stage.key, stage.queue.value, "succeeded", elapsed)
        log.info(
            "%s.finished %s in %.1f s", stage.key, entity_id, elapsed, extra={**fields, "duration_s": round(elapsed, 3)}
        )
        events.publish(
            "stage.finished",
            topics=stage.topics(entity_id),
            stage=stage.key,
            entity_id=entity_id,
            seconds=round(elapsed, 3),
        )
    except Exception as error:  # every failure is recorded; none escapes to Dramatiq's own retries
        _record_failure(stage, entity_id, claim, error, settings, on_final_failure, on_retry)


def _record_failure(
    stage: Stage,
    entity_id: int,
    claim: claims.Claim,
    error: Exception,
    settings: Settings,
    on_final_failure: FailureHandler,
    on_retry: RetryNote | None,
) -> None:
    message = error_message(error)
    if isinstance(error, LeaseLost):  # another worker runs it now: its outcome is the one recorded
        metrics.outcome(stage.key, stage.queue.value, "lost")
        log.warning("%s.lost %s (attempt %s): %s", stage.key, entity_id, claim.attempts, message)
        return
    if isinstance(error, InvalidTransition):
        # The entity moved on (done by another run, or changed by a person): retrying cannot help, and an
        # "attempt failed" note would be false. The claim is closed with the reason; the entity is untouched.
        metrics.outcome(stage.key, stage.queue.value, "moot")
        log.warning("%s.moot %s: %s", stage.key, entity_id, message)
        try:
            with unit_of_work() as session:
                claims.succeed(session, claim, note=f"Nothing to do: {message}")
        except LeaseLost as lost:
            log.warning("%s.lost %s: %s", stage.key, entity_id, lost)
        return
    if isinstance(error, NotFound):  # the entity was deleted meanwhile: nothing left to do or to mark
        log.warning("%s.gone %s: %s", stage.key, entity_id, message)
        try:
            with unit_of_work() as session:
                claims.fail(session, claim, message, permanent=True, max_attempts=settings.job_max_attempts)
        except LeaseLost as lost:
            log.warning("%s.lost %s: %s", stage.key, entity_id, lost)
        return
    permanent = isinstance(error, PermanentError)
    log.error(
        "%s.failed %s (attempt %s): %s",
        stage.key,
        entity_id,
        claim.attempts,
        message,
        exc_info=not permanent,
        extra={"job": stage.key, "queue": stage.queue.value, "entity_id": entity_id, "attempt": claim.attempts},
    )
    try:
        delay = _write_failure(stage, entity_id, claim, message, permanent, settings, on_final_failure, on_retry)
    except LeaseLost as lost:
        log.warning("%s.lost %s: %s", stage.key, entity_id, lost)
        return
    metrics.outcome(stage.key, stage.queue.value, "failed" if delay is None else "retrying")
    events.publish(
        "stage.failed",
        topics=stage.topics(entity_id),
        stage=stage.key,
        entity_id=entity_id,
        error=message,
        final=delay is None,
    )


def _write_failure(
    stage: Stage,
    entity_id: int,
    claim: claims.Claim,
    message: str,
    permanent: bool,
    settings: Settings,
    on_final_failure: FailureHandler,
    on_retry: RetryNote | None,
) -> float | None:
    with unit_of_work() as session:
        delay = claims.fail(
            session,
            claim,
            message,
            permanent=permanent,
            max_attempts=settings.job_max_attempts,
            backoff_base=settings.job_backoff_seconds,
        )
        if delay is None:
            on_final_failure(session, entity_id, message)
        else:
            if on_retry is not None:
                attempt = f"Attempt {claim.attempts} of {settings.job_max_attempts}"
                note = f"{attempt} failed: {message} (retrying in {delay:.3g} s)"
                on_retry(session, entity_id, note)
            schedule_retry(session, stage, entity_id, delay)
    return delay


def schedule_retry(session: Session, stage: Stage, entity_id: int, delay_seconds: float) -> None:
    """The claim is `retrying` until its time comes; the delayed message (or the Dispatcher) picks it up."""
    from heaters import jobs

    jobs.enqueue(stage.actor_name, stage.queue.value, entity_id, delay_ms=int(delay_seconds * 1000))
