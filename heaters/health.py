"""Readiness checks: one entry per dependency, each bounded in time and never raising."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, text

from heaters import migrations
from heaters.storage.s3 import S3Storage


class NotReady(Exception):
    """A check's own finding, worded for anyone to read (no hosts, no credentials)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # full: for `heaters doctor` and the logs
    summary: str  # safe to show on the unauthenticated /readyz
    elapsed_ms: float

    def public(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.summary, "elapsed_ms": self.elapsed_ms}


def _timed(name: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = summary = check()
        ok = True
    except NotReady as error:
        detail = summary = str(error)
        ok = False
    except Exception as error:  # a readiness probe reports every failure; it must not raise
        detail, ok = f"{type(error).__name__}: {error}".strip()[:300], False
        summary = f"unreachable ({type(error).__name__})"
    return CheckResult(name, ok, detail, summary, round((time.perf_counter() - started) * 1000, 1))


def check_database(engine: Engine) -> str:
    with engine.connect() as connection:
        connection.execute(text("SET LOCAL statement_timeout = 2000"))
        connection.execute(text("SELECT 1"))
    current, head = migrations.current_revision(engine), migrations.head_revision()
    if current != head:
        raise NotReady(f"schema at {current or 'no revision'}, expected {head}: run `heaters db upgrade`")
    return f"reachable, schema at head {head}"


def check_redis(client: redis.Redis) -> str:
    client.ping()
    return "reachable"


def check_s3(storage: S3Storage) -> str:
    storage.check_bucket()
    return "bucket reachable"


def check_tools() -> str:
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise NotReady(f"not on PATH: {', '.join(missing)}")
    return "ffmpeg and ffprobe on PATH"


def readiness(engine: Engine, redis_client: redis.Redis, storage: S3Storage) -> list[CheckResult]:
    return [
        _timed("database", lambda: check_database(engine)),
        _timed("redis", lambda: check_redis(redis_client)),
        _timed("s3", lambda: check_s3(storage)),
        _timed("ffmpeg", check_tools),
    ]
