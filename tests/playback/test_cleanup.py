"""The playback-cache cleanup on real files, real `temp_clips` rows and the real S3: `clean_directory`,
`clean_shared`, `run()`, its log lines, the media route's `last_served_at`, and `heaters cache stats|cleanup`.

Files are written with known sizes and their mtimes (and atimes) set with os.utime; the clock and the free
disk are injected, so every decision is fixed by the test, not by this machine's disk or timing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from heaters.adapters import get_storage
from heaters.db import unit_of_work
from heaters.pipeline.runner import _host_tag
from heaters.playback import cleanup, names
from heaters.playback.cleanup import Policy
from heaters.settings import get_settings
from tests.fixtures.workers import run_cli

from .helpers import Playback, listing

MIN = 60.0
HOUR = 3600.0
LOGGER = "heaters.playback.cleanup"
PLENTY = 10**12  # free bytes: never under a floor


def at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass
class Cache:
    """One cache directory, its temp clips (real files, real rows) and their shared copies in S3."""

    playback: Playback
    root: Path
    now: float
    keys: list[str] = field(default_factory=list)
    _video: int | None = None
    _count: int = 0

    def add(
        self,
        size: int,
        *,
        made: float,
        served: float | None = None,
        read: float = 0.0,
        row: bool = True,
        file: bool = True,
        shared: bool = False,
        ready: float | None = None,
    ) -> str:
        """A temp clip whose file was made `made` seconds before `now` and read `read` seconds before it (its
        atime); its row (state ready) was last served `served` seconds before `now` (None: never)."""
        if self._video is None:
            self._video = self.playback.bare_video()
        self._count += 1
        clip_id = self.playback.clip(self._video, 10 * self._count, 10 * self._count + 5)
        name = names.temp_filename(clip_id, int(self.now * 1000) - self._count)
        data = bytes([self._count % 256]) * size
        path = self.root / name
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (self.now - read, self.now - made))
        key = None
        if shared:
            key = names.s3_key(name)
            assert get_storage().upload_file(path, key, content_type="video/mp4") == size
            self.keys.append(key)
        if not file:
            path.unlink()
        if row:
            with self.playback.engine.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO temp_clips (clip_id, filename, state, size_bytes, s3_key, ready_at, "
                        "last_served_at) VALUES (:clip, :name, 'ready', :size, :key, :ready, :served)"
                    ),
                    {
                        "clip": clip_id,
                        "name": name,
                        "size": size,
                        "key": key,
                        "ready": at(self.now - (made if ready is None else ready)),
                        "served": None if served is None else at(self.now - served),
                    },
                )
        return name

    def rows(self) -> dict[str, datetime | None]:
        with self.playback.engine.connect() as connection:
            found = connection.execute(text("SELECT filename, last_served_at FROM temp_clips")).all()
        return {str(name): served for name, served in found}

    def files(self) -> dict[str, tuple[int, float, bytes]]:
        """Every entry (hidden ones too): size, mtime and bytes, to show that nothing was touched."""
        return {
            p.name: (p.stat().st_size, p.stat().st_mtime, p.read_bytes() if p.is_file() else b"")
            for p in self.root.iterdir()
        }

    def clean(self, policy: Policy, *, authoritative: bool, free: int = PLENTY, apply: bool = True) -> dict[str, Any]:
        asked: list[Path] = []

        def disk(path: Path) -> int:
            asked.append(path)
            return free

        with unit_of_work() as session:
            stats = cleanup.clean_directory(
                self.root, session, policy, authoritative=authoritative, clock=lambda: self.now, disk=disk, apply=apply
            )
        assert asked == [self.root]
        return stats


@pytest.fixture
def cache(playback: Playback) -> Iterator[Cache]:
    """Rooted at the harness's PLAYBACK_CACHE_DIR (tmp_path/cache), so the route and run() see the same files."""
    made = Cache(playback, get_settings().playback_cache_dir, time.time())
    assert made.root == playback.root / "cache"
    yield made
    if made.keys:
        get_storage().delete(*made.keys)


def exists_in_s3(key: str) -> bool:
    return get_storage().size(key) is not None


# -- one host's directory ------------------------------------------------------------------------------------


def test_one_host_evicts_by_last_served_then_least_recently_served_and_forgets_the_evicted_rows(cache: Cache) -> None:
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=3000, min_free_bytes=0, in_use_seconds=30)
    # Made two hours ago but served two minutes ago: stays.
    served_recently = cache.add(1000, made=2 * HOUR, served=2 * MIN, read=2 * HOUR)
    # Served an hour ago but *read* a second ago (atime): expires all the same, atime is never consulted.
    read_recently = cache.add(500, made=2 * HOUR, served=HOUR, read=1)
    never_served = cache.add(400, made=20 * MIN)
    # Within the age; 1000 + 1000 + 1000 + 600 = 3600 bytes > 3000: the least recently served goes.
    lru_oldest = cache.add(1000, made=14 * MIN, served=10 * MIN)
    lru_middle = cache.add(1000, made=14 * MIN, served=5 * MIN)
    lru_newest = cache.add(600, made=14 * MIN, served=3 * MIN)
    elsewhere = cache.add(300, made=3 * HOUR, file=False)  # a ready row whose file this directory lacks
    assert os.stat(cache.root / read_recently).st_atime == pytest.approx(cache.now - 1, abs=1e-3)

    stats = cache.clean(policy, authoritative=True, free=10_000)

    kept = sorted([served_recently, lru_middle, lru_newest])
    assert listing(cache.root) == kept
    assert sorted(cache.rows()) == sorted([*kept, elsewhere]), "only the evicted files' rows go"
    assert stats == {
        "place": str(cache.root),
        "files_before": 6,
        "files_after": 3,
        "bytes_before": 4500,
        "bytes_after": 2600,
        "evicted": {"expired": 2, "size": 1},
        "free_bytes_before": 10_000,
        "free_bytes_after": 11_900,
        "low_disk": False,
    }
    assert lru_oldest not in cache.rows() and never_served not in cache.rows()

    # A second run finds nothing more to do.
    again = cache.clean(policy, authoritative=True, free=11_900)
    assert again["evicted"] == {} and again["files_after"] == 3 and listing(cache.root) == kept


def test_a_directory_that_is_not_the_only_copy_keeps_the_rows_of_the_files_it_removes(cache: Cache) -> None:
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=10**9, min_free_bytes=0, in_use_seconds=30)
    stale = cache.add(700, made=2 * HOUR, served=HOUR)
    fresh = cache.add(300, made=2 * HOUR, served=MIN)
    before = cache.rows()

    stats = cache.clean(policy, authoritative=False)

    assert listing(cache.root) == [fresh]
    assert cache.rows() == before, "another copy (S3) still backs these rows: nothing is forgotten"
    assert stale in cache.rows() and stats["evicted"] == {"expired": 1}
    assert (stats["files_before"], stats["files_after"], stats["bytes_before"], stats["bytes_after"]) == (
        2,
        1,
        1000,
        300,
    )


def test_low_disk_evicts_least_recently_served_until_the_floor_and_never_a_file_in_use(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=10**9, min_free_bytes=5000, in_use_seconds=30)
    watched = cache.add(8000, made=3 * HOUR, served=5)  # its row says it was served 5 s ago
    just_made = cache.add(6000, made=3)  # a generation that just finished
    oldest = cache.add(1000, made=14 * MIN, served=12 * MIN)
    middle = cache.add(1000, made=14 * MIN, served=6 * MIN)
    newest = cache.add(1000, made=14 * MIN, served=2 * MIN)

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        stats = cache.clean(policy, authoritative=True, free=3500)  # 1500 short: two files of 1000

    assert listing(cache.root) == sorted([watched, just_made, newest])
    assert oldest not in cache.rows() and middle not in cache.rows()
    assert stats["evicted"] == {"low_disk": 2} and stats["low_disk"] is True
    assert (stats["free_bytes_before"], stats["free_bytes_after"]) == (3500, 5500)
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert warnings == [f"playback.cleanup low disk under {cache.root}: 3500 bytes free, floor 5000"]

    # Nothing left to evict but the files in use, disk still short: they stay, and the disk is reported low.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        stats = cache.clean(policy, authoritative=True, free=0)
    assert listing(cache.root) == sorted([watched, just_made])
    assert stats["evicted"] == {"low_disk": 1} and stats["low_disk"] is True
    assert sorted(cache.rows()) == sorted([watched, just_made])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_files_that_are_not_temp_clips_are_never_touched_and_a_part_being_written_is_kept(cache: Cache) -> None:
    # Every evictable file goes (free disk 0 under a 1 GB floor), so whatever remains was never a candidate.
    policy = Policy(min_free_bytes=10**9, partial_grace_seconds=180)
    cache.root.mkdir(parents=True)
    day_ago = cache.now - 24 * HOUR
    strangers = ["notes.txt", "clip_1_2.mp4.bak", "CLIP_1_2.mp4", "clip_1_2.MP4", "clip_1.mp4", "clip_\u0661_2.mp4"]
    for name in strangers:
        (cache.root / name).write_bytes(b"not ours: " + name.encode())
        os.utime(cache.root / name, (day_ago, day_ago))
    (cache.root / "sub").mkdir()
    (cache.root / "sub" / "clip_3_4.mp4").write_bytes(b"inside a subdirectory")
    old = cache.add(100, made=2 * HOUR)
    writing = cache.root / f".{names.temp_filename(5, 5)}.deadbeef.part"
    writing.write_bytes(b"w" * 50)
    os.utime(writing, (cache.now - 60, cache.now - 60))  # a generation a minute in (of up to 180 s)
    abandoned = cache.root / f".{names.temp_filename(6, 6)}.cafef00d.part"
    abandoned.write_bytes(b"a" * 70)
    os.utime(abandoned, (day_ago, day_ago))
    untouched = {k: v for k, v in cache.files().items() if k in {*strangers, "sub"}}

    stats = cache.clean(policy, authoritative=True, free=0)

    assert listing(cache.root) == sorted([*strangers, "sub", writing.name])
    assert {k: v for k, v in cache.files().items() if k in {*strangers, "sub"}} == untouched
    assert (cache.root / "sub" / "clip_3_4.mp4").read_bytes() == b"inside a subdirectory"
    assert old not in cache.rows()
    assert stats["evicted"] == {"expired": 1, "abandoned": 1}
    assert (stats["files_before"], stats["bytes_before"], stats["files_after"], stats["bytes_after"]) == (3, 220, 1, 50)


def test_a_hidden_part_file_that_is_not_a_temp_clip_is_not_ours_either(cache: Cache) -> None:
    """`scan` takes any `.*.part` for a partial temp clip; ours are only `.clip_<id>_<ms>.mp4.<hex>.part`."""
    cache.root.mkdir(parents=True)
    day_ago = cache.now - 24 * HOUR
    for name in (".notes.part", ".download.iso.part", ".clip_1_2.mp4.part.bak"):
        (cache.root / name).write_bytes(b"someone else's download")
        os.utime(cache.root / name, (day_ago, day_ago))
    before = cache.files()

    stats = cache.clean(Policy(partial_grace_seconds=180), authoritative=True)

    assert cache.files() == before
    assert stats["files_before"] == 0 and stats["evicted"] == {}


def test_a_directory_named_like_a_temp_clip_does_not_stop_the_cleanup(cache: Cache) -> None:
    stale = cache.add(100, made=2 * HOUR)
    odd = cache.root / names.temp_filename(7, 7)
    odd.mkdir()
    os.utime(odd, (cache.now - 2 * HOUR, cache.now - 2 * HOUR))

    stats = cache.clean(Policy(), authoritative=True)

    assert listing(cache.root) == [odd.name], "the expired clip goes; the directory is not ours"
    assert stale not in cache.rows() and stats["evicted"] == {"expired": 1}


def test_without_apply_nothing_changes_but_the_stats_say_what_would_go(cache: Cache) -> None:
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=2000, min_free_bytes=0, in_use_seconds=30)
    cache.add(900, made=2 * HOUR, served=HOUR)  # expired
    cache.add(1000, made=10 * MIN, served=9 * MIN)  # size: 1000 + 800 + 400 = 2200 > 2000
    keep_a = cache.add(800, made=10 * MIN, served=4 * MIN)
    keep_b = cache.add(400, made=10 * MIN, served=1 * MIN)
    abandoned = cache.root / f".{names.temp_filename(9, 9)}.0badf00d.part"
    abandoned.write_bytes(b"p" * 33)
    os.utime(abandoned, (cache.now - HOUR, cache.now - HOUR))
    files, rows = cache.files(), cache.rows()

    dry = cache.clean(policy, authoritative=True, free=123, apply=False)

    assert cache.files() == files and cache.rows() == rows, "a dry run removes nothing, files or rows"
    assert dry == {
        "place": str(cache.root),
        "files_before": 5,
        "files_after": 2,
        "bytes_before": 3133,
        "bytes_after": 1200,
        "evicted": {"abandoned": 1, "expired": 1, "size": 1},
        "free_bytes_before": 123,
        "free_bytes_after": 2056,
        "low_disk": False,
    }

    applied = cache.clean(policy, authoritative=True, free=123)
    assert applied == dry, "the dry run said exactly what the real one did"
    assert listing(cache.root) == sorted([keep_a, keep_b])
    assert sorted(cache.rows()) == sorted([keep_a, keep_b])


def test_a_file_served_through_the_media_route_is_kept_though_its_file_is_old(client: TestClient, cache: Cache) -> None:
    watched = cache.add(4000, made=HOUR)
    unwatched = cache.add(4000, made=HOUR)
    assert cache.rows() == {watched: None, unwatched: None}

    response = client.get(names.media_url(watched), headers={"Range": "bytes=0-99"})
    assert response.status_code == 206 and response.content == (cache.root / watched).read_bytes()[:100]
    served = cache.rows()[watched]
    assert served is not None and abs(served.timestamp() - time.time()) < 30, "the route records last_served_at"
    assert cache.rows()[unwatched] is None

    # Two minutes on: past in_use_seconds, well inside the age. The old mtime alone would expire both.
    cache.now = time.time() + 2 * MIN
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=10**9, min_free_bytes=0, in_use_seconds=30)
    stats = cache.clean(policy, authoritative=True)

    assert listing(cache.root) == [watched]
    assert list(cache.rows()) == [watched]
    assert stats["evicted"] == {"expired": 1}


# -- shared playback: S3 playback/ ---------------------------------------------------------------------------


def test_clean_shared_deletes_expired_and_least_recently_served_objects_and_their_rows(cache: Cache) -> None:
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=1500, min_free_bytes=10**15, in_use_seconds=30)
    expired = cache.add(200, made=2 * HOUR, served=HOUR, shared=True, file=False)
    never_served = cache.add(300, made=20 * MIN, shared=True, file=False)
    # 600 + 600 + 600 > 1500 (by the rows' size_bytes): the least recently served of the three goes.
    lru = cache.add(600, made=HOUR, served=10 * MIN, shared=True, file=False)
    recent = cache.add(600, made=2 * HOUR, served=2 * MIN, shared=True, file=False)
    fresh = cache.add(600, made=MIN, shared=True, file=False)  # ready a minute ago, not yet served
    watched = cache.add(50, made=3 * HOUR, served=5, shared=True, file=False)
    single_host = cache.add(100, made=3 * HOUR, file=False)  # ready, no s3_key: not S3's to clean
    storage = get_storage()
    assert all(exists_in_s3(names.s3_key(n)) for n in (expired, never_served, lru, recent, fresh, watched))

    with unit_of_work() as session:
        dry = cleanup.clean_shared(storage, session, policy, clock=lambda: cache.now, apply=False)
    assert all(exists_in_s3(k) for k in cache.keys) and len(cache.rows()) == 7

    with unit_of_work() as session:
        stats = cleanup.clean_shared(storage, session, policy, clock=lambda: cache.now)

    assert (
        stats
        == dry
        == {
            "place": "s3:playback/",
            "files_before": 6,
            "files_after": 3,
            "bytes_before": 2350,
            "bytes_after": 1250,
            "evicted": {"expired": 2, "size": 1},
            "free_bytes_before": None,
            "free_bytes_after": None,
            "low_disk": False,  # S3 has no disk floor, however high min_free_bytes is
        }
    )
    gone, kept = [expired, never_served, lru], [recent, fresh, watched]
    assert [exists_in_s3(names.s3_key(n)) for n in gone] == [False] * 3
    assert [exists_in_s3(names.s3_key(n)) for n in kept] == [True] * 3
    assert sorted(cache.rows()) == sorted([*kept, single_host])


def _abandoned_work_dir(root: Path) -> Path:
    """A job work directory of a process on this host that has exited (as `runner.work_directory` names it)."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait(timeout=30)
    path = root / f"temp_clips_generate-1-{_host_tag()}-{dead.pid}-0123abcd"
    path.mkdir(parents=True)
    (path / "scratch.mp4").write_bytes(b"left behind")
    return path


def _logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    prefix = "playback.cleanup "
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert all(line.startswith(prefix) for line in lines), lines
    return [json.loads(line.removeprefix(prefix)) for line in lines]


def test_run_with_shared_playback_cleans_the_directory_without_forgetting_rows_and_cleans_s3(
    cache: Cache, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work = tmp_path / "work"
    left = _abandoned_work_dir(work)
    settings = get_settings().model_copy(
        update={
            "playback_shared": True,
            "work_dir": work,
            "playback_cache_max_age_minutes": 15,
            "playback_cache_max_bytes": 10**9,
            "playback_cache_min_free_bytes": 10**6,  # this host's disk is low (free reads 0): S3's is not
        }
    )
    both_expired = cache.add(400, made=2 * HOUR, served=HOUR, shared=True)
    local_low_disk = cache.add(500, made=5 * MIN, ready=6 * MIN, served=4 * MIN, shared=True)
    watched = cache.add(600, made=2 * HOUR, served=5, shared=True)
    only_in_s3 = cache.add(700, made=20 * MIN, shared=True, file=False)  # never pulled here, never served
    asked: list[Path] = []

    def disk(path: Path) -> int:
        asked.append(path)
        return 0

    with caplog.at_level(logging.INFO, logger=LOGGER):
        results = cleanup.run(settings, clock=lambda: cache.now, disk=disk)

    assert asked == [cache.root]
    assert listing(cache.root) == [watched]
    # The local copy removed for low disk keeps its row and its S3 object: another host can still pull it.
    assert sorted(cache.rows()) == sorted([local_low_disk, watched])
    assert exists_in_s3(names.s3_key(local_low_disk)) and exists_in_s3(names.s3_key(watched))
    assert not exists_in_s3(names.s3_key(both_expired)) and not exists_in_s3(names.s3_key(only_in_s3))
    assert not left.exists()
    directory, shared, work_dirs = results
    assert directory == {
        "place": str(cache.root),
        "files_before": 3,
        "files_after": 1,
        "bytes_before": 1500,
        "bytes_after": 600,
        "evicted": {"expired": 1, "low_disk": 1},
        "free_bytes_before": 0,
        "free_bytes_after": 900,
        "low_disk": True,
    }
    assert shared == {
        "place": "s3:playback/",
        "files_before": 4,
        "files_after": 2,
        "bytes_before": 2200,
        "bytes_after": 1100,
        "evicted": {"expired": 2},
        "free_bytes_before": None,
        "free_bytes_after": None,
        "low_disk": False,
    }
    assert work_dirs == {"place": str(work), "abandoned_work_dirs_removed": 1}
    assert _logged(caplog) == results


def test_run_on_one_host_logs_one_structured_line_per_place(
    cache: Cache, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    settings = get_settings().model_copy(
        update={"work_dir": work, "playback_cache_max_age_minutes": 15, "playback_cache_min_free_bytes": 1000}
    )
    assert settings.playback_shared is False
    stale = cache.add(1234, made=2 * HOUR, served=30 * MIN)
    fresh = cache.add(4321, made=2 * HOUR, served=3 * MIN)
    partial = cache.root / f".{names.temp_filename(3, 3)}.00000000.part"
    partial.write_bytes(b"x" * 11)
    os.utime(partial, (cache.now - HOUR, cache.now - HOUR))

    with caplog.at_level(logging.INFO, logger=LOGGER):
        results = cleanup.run(settings, clock=lambda: cache.now, disk=lambda _path: 50_000)

    assert listing(cache.root) == [fresh]
    assert list(cache.rows()) == [fresh], "one host: the evicted file was the only copy, so its row goes"
    assert stale not in cache.rows()
    logged = _logged(caplog)
    assert logged == results and len(logged) == 2
    assert logged[0] == {
        "place": str(cache.root),
        "files_before": 3,
        "files_after": 1,
        "bytes_before": 5566,
        "bytes_after": 4321,
        "evicted": {"abandoned": 1, "expired": 1},
        "free_bytes_before": 50_000,
        "free_bytes_after": 51_245,
        "low_disk": False,
    }
    assert logged[1] == {"place": str(work), "abandoned_work_dirs_removed": 0}
    record = next(r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO)
    assert record.getMessage() == "playback.cleanup " + json.dumps(results[0], sort_keys=True)


# -- the CLI -------------------------------------------------------------------------------------------------


def test_cli_cache_stats_reports_the_directory_and_removes_nothing_then_cleanup_removes_the_expired(
    cache: Cache, app_env: dict[str, str], tmp_path: Path
) -> None:
    cache.now = time.time()  # the CLI runs on the real clock and the real disk (no floor: min free 0)
    expired_row = cache.add(3000, made=2 * HOUR, served=HOUR)
    expired_no_row = cache.add(2000, made=3 * HOUR, row=False)
    served = cache.add(5000, made=2 * HOUR, served=MIN)
    new = cache.add(7000, made=2 * MIN)
    (cache.root / "README.txt").write_bytes(b"not a temp clip")
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        **app_env,
        "PLAYBACK_CACHE_DIR": str(cache.root),
        "PLAYBACK_SHARED": "false",
        "WORK_DIR": str(work),
        "PLAYBACK_CACHE_MIN_FREE_BYTES": "0",
    }
    on_disk = [p for p in cache.root.iterdir() if names.parse(p.name) is not None]
    files, rows = cache.files(), cache.rows()

    result = run_cli(env, "cache", "stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert cache.files() == files and cache.rows() == rows, "stats removes nothing"
    assert [s["place"] for s in stats] == [str(cache.root), str(work)]
    place = stats[0]
    assert place["files_before"] == len(on_disk) == 4
    assert place["bytes_before"] == sum(p.stat().st_size for p in on_disk) == 17_000
    assert place["evicted"] == {"expired": 2}
    assert (place["files_after"], place["bytes_after"]) == (2, 12_000)
    assert place["free_bytes_after"] == place["free_bytes_before"] + 5000
    assert place["low_disk"] is False

    result = run_cli(env, "cache", "cleanup", "--json")
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)[0]
    assert {k: v for k, v in done.items() if not k.startswith("free_")} == {
        k: v for k, v in place.items() if not k.startswith("free_")
    }
    assert listing(cache.root) == sorted(["README.txt", served, new])
    assert sorted(cache.rows()) == sorted([served, new])
    assert expired_row not in cache.rows() and not (cache.root / expired_no_row).exists()
