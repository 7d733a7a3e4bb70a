"""Keeping the playback cache within bounds: age, size and a free-disk floor, least recently *served* first.

`plan()` is the policy, a pure function of the files, the clock and the free disk. `clean_directory()` and
`clean_shared()` apply it to one host's cache directory and to the shared S3 prefix. When the copy that
`temp_clips` vouches for goes (the only directory on one host, or `playback/` in S3 when playback is shared),
its row goes too, so the next request makes the clip again instead of answering 404.

What is never removed: a `.part` file younger than a generation may take (it is being written), and any
file served or made in the last `in_use_seconds` (a reviewer is watching it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG

from sqlalchemy import text
from sqlmodel import Session

from heaters.playback import names
from heaters.settings import Settings
from heaters.storage.s3 import S3Storage

log = logging.getLogger(__name__)

Clock = Callable[[], float]
FreeDisk = Callable[[Path], int]


@dataclass(frozen=True)
class Policy:
    max_age_seconds: float = 15 * 60
    max_bytes: int = 1024**3
    min_free_bytes: int = 500 * 1024**2
    in_use_seconds: float = 30.0
    partial_grace_seconds: float = 180.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_age_seconds=settings.playback_cache_max_age_minutes * 60,
            max_bytes=settings.playback_cache_max_bytes,
            min_free_bytes=settings.playback_cache_min_free_bytes,
            partial_grace_seconds=settings.temp_clip_timeout_seconds + 60,
        )


@dataclass(frozen=True)
class CachedFile:
    name: str
    size: int
    modified: float  # when it was made (or pulled) here
    last_served: float | None = None  # from temp_clips.last_served_at: the cleanup's only notion of use
    partial: bool = False

    @property
    def last_used(self) -> float:
        return max(self.modified, self.last_served or 0.0)


@dataclass
class Plan:
    evict: list[tuple[CachedFile, str]] = field(default_factory=list)  # (file, reason), in eviction order
    kept: list[CachedFile] = field(default_factory=list)
    low_disk: bool = False

    def stats(self, *, free_before: int | None) -> dict[str, object]:
        by_reason: dict[str, int] = {}
        for _file, reason in self.evict:
            by_reason[reason] = by_reason.get(reason, 0) + 1
        evicted = sum(f.size for f, _ in self.evict)
        return {
            "files_before": len(self.kept) + len(self.evict),
            "files_after": len(self.kept),
            "bytes_before": sum(f.size for f in self.kept) + evicted,
            "bytes_after": sum(f.size for f in self.kept),
            "evicted": by_reason,
            "free_bytes_before": free_before,
            "free_bytes_after": None if free_before is None else free_before + evicted,
            "low_disk": self.low_disk,
        }


def plan(files: Sequence[CachedFile], policy: Policy, *, now: float, free_bytes: int | None) -> Plan:
    """Which files go, and why: abandoned partials, expired, over the size cap, then under the disk floor."""
    result = Plan()
    candidates: list[CachedFile] = []
    for file in files:
        if file.partial:
            if now - file.modified > policy.partial_grace_seconds:
                result.evict.append((file, "abandoned"))
            else:
                result.kept.append(file)  # being written
        elif now - file.last_used < policy.in_use_seconds:
            result.kept.append(file)  # served (or made) a moment ago: someone is watching it
        elif now - file.last_used > policy.max_age_seconds:
            result.evict.append((file, "expired"))
        else:
            candidates.append(file)
    candidates.sort(key=lambda f: (f.last_used, f.name))  # least recently served first
    total = sum(f.size for f in candidates) + sum(f.size for f in result.kept)
    free = free_bytes
    freed = sum(f.size for f, _ in result.evict)
    for file in candidates:
        if total > policy.max_bytes:
            result.evict.append((file, "size"))
            total -= file.size
            freed += file.size
        elif free is not None and free + freed < policy.min_free_bytes:
            result.evict.append((file, "low_disk"))
            result.low_disk = True
            total -= file.size
            freed += file.size
        else:
            result.kept.append(file)
    if free is not None and free + freed < policy.min_free_bytes:
        result.low_disk = True  # even with everything evictable gone
    return result


def _served_times(session: Session, filenames: Iterable[str]) -> dict[str, float]:
    rows = session.execute(
        text(
            "SELECT filename, last_served_at FROM temp_clips "
            "WHERE filename = ANY(:names) AND last_served_at IS NOT NULL"
        ),
        {"names": list(filenames)},
    ).all()
    return {str(name): served.timestamp() for name, served in rows}


def _forget(session: Session, filenames: Sequence[str]) -> int:
    """The rows of files that are gone for good: a later request makes the clip again, under a new name."""
    if not filenames:
        return 0
    result = session.execute(
        text("DELETE FROM temp_clips WHERE filename = ANY(:names) AND state = 'ready'"), {"names": list(filenames)}
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def scan(root: Path) -> list[CachedFile]:
    """Temp clips and their partial files in one directory (anything else there is not ours to touch)."""
    files: list[CachedFile] = []
    if not root.is_dir():
        return files
    for path in root.iterdir():
        name = path.name
        partial = names.PARTIAL.fullmatch(name) is not None
        if not partial and names.parse(name) is None:
            continue
        try:
            stat = path.lstat()
        except FileNotFoundError:  # removed meanwhile (served elsewhere, cleaned by another run)
            continue
        if not S_ISREG(stat.st_mode):  # a directory or a link with a clip's name is not a cached file
            continue
        files.append(CachedFile(name, stat.st_size, stat.st_mtime, partial=partial))
    return files


def free_disk(path: Path) -> int:
    """Free bytes on the disk under the cache (its nearest existing parent, if it is not made yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def clean_directory(
    root: Path,
    session: Session,
    policy: Policy,
    *,
    authoritative: bool,
    clock: Clock = time.time,
    disk: FreeDisk = free_disk,
    apply: bool = True,
) -> dict[str, object]:
    """One host's cache directory. `authoritative`: no other copy exists, so evicted rows are forgotten."""
    found = scan(root)
    served = _served_times(session, [f.name for f in found if not f.partial])
    files = [CachedFile(f.name, f.size, f.modified, served.get(f.name), f.partial) for f in found]
    free = disk(root)
    decided = plan(files, policy, now=clock(), free_bytes=free)
    removed: list[str] = []
    if apply:
        for file, _reason in decided.evict:
            (root / file.name).unlink(missing_ok=True)
            if not file.partial:
                removed.append(file.name)
        if authoritative:
            _forget(session, removed)
    stats = {"place": str(root), **decided.stats(free_before=free)}
    if decided.low_disk:
        log.warning("playback.cleanup low disk under %s: %s bytes free, floor %s", root, free, policy.min_free_bytes)
    return stats


def clean_shared(
    storage: S3Storage, session: Session, policy: Policy, *, clock: Clock = time.time, apply: bool = True
) -> dict[str, object]:
    """The shared copies under S3 `playback/` (PLAYBACK_SHARED): age and size by the rows' records."""
    rows = session.execute(
        text(
            "SELECT filename, s3_key, size_bytes, ready_at, last_served_at FROM temp_clips "
            "WHERE state = 'ready' AND s3_key IS NOT NULL"
        )
    ).all()
    files = [
        CachedFile(
            str(r.filename),
            int(r.size_bytes or 0),
            (r.ready_at or datetime.now(UTC)).timestamp(),
            r.last_served_at.timestamp() if r.last_served_at else None,
        )
        for r in rows
    ]
    keys = {str(r.filename): str(r.s3_key) for r in rows}
    decided = plan(files, policy, now=clock(), free_bytes=None)  # S3 has no disk to run out of
    if apply and decided.evict:
        gone = [f.name for f, _ in decided.evict]
        storage.delete(*(keys[name] for name in gone))
        _forget(session, gone)
    return {"place": f"s3:{names.S3_PREFIX}", **decided.stats(free_before=None)}


def log_stats(stats: dict[str, object]) -> None:
    """One structured line per place cleaned."""
    log.info("playback.cleanup %s", json.dumps(stats, sort_keys=True))


def run(
    settings: Settings, *, apply: bool = True, clock: Clock = time.time, disk: FreeDisk = free_disk
) -> list[dict[str, object]]:
    """Every place a temp clip lives that this host can reach, then the abandoned job work directories."""
    from heaters.adapters import get_storage
    from heaters.db import unit_of_work
    from heaters.pipeline.runner import sweep_orphaned_work_dirs

    policy = Policy.from_settings(settings)
    results = []
    with unit_of_work() as session:
        results.append(
            clean_directory(
                settings.playback_cache_dir,
                session,
                policy,
                authoritative=not settings.playback_shared,
                clock=clock,
                disk=disk,
                apply=apply,
            )
        )
        if settings.playback_shared:
            results.append(clean_shared(get_storage(), session, policy, clock=clock, apply=apply))
    removed = sweep_orphaned_work_dirs(settings.work_dir) if apply else []
    results.append({"place": str(settings.work_dir), "abandoned_work_dirs_removed": len(removed)})
    for stats in results:
        log_stats(stats)
    return results


WEB_CLEANUP_EVERY_SECONDS = 600.0


def web_task() -> Callable[..., Awaitable[None]]:
    """A lifespan task for web hosts with their own disk (PLAYBACK_SHARED): the maintenance tick runs on a
    worker and cannot reach them, so each web process keeps its own copies within the same policy."""

    async def clean_here(*_app: object) -> None:
        from heaters.settings import get_settings

        settings = get_settings()
        if not settings.playback_shared:
            return  # one host: the worker's maintenance tick cleans the one shared directory
        policy = Policy.from_settings(settings)
        while True:
            await asyncio.sleep(WEB_CLEANUP_EVERY_SECONDS)
            try:
                await asyncio.to_thread(_clean_web_directory, settings, policy)
            except Exception as error:  # a failed round is logged; the next one tries again
                log.warning("playback.cleanup on this web host failed: %s", error)

    return clean_here


def _clean_web_directory(settings: Settings, policy: Policy) -> None:
    from heaters.db import unit_of_work

    with unit_of_work() as session:
        log_stats(clean_directory(settings.playback_cache_dir, session, policy, authoritative=False))
