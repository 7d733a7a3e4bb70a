"""The playback-cache cleanup policy (`cleanup.plan`): a pure function of the files, the clock and the free disk.

No services, no files: each `CachedFile` says when it was made here and when `temp_clips` last saw it served.
"""

from __future__ import annotations

from heaters.playback.cleanup import CachedFile, Plan, Policy, plan
from heaters.settings import Settings

NOW = 1_800_000_000.0
MIN = 60.0
# 15 min expiry, 1000 bytes cap, no disk floor unless a test sets one, 30 s in use, 180 s for a .part.
POLICY = Policy(
    max_age_seconds=15 * MIN, max_bytes=1000, min_free_bytes=0, in_use_seconds=30, partial_grace_seconds=180
)


def clip(name: str, size: int = 100, *, made: float, served: float | None = None) -> CachedFile:
    """A temp clip made `made` seconds ago (its mtime), last served `served` seconds ago (None: never)."""
    return CachedFile(f"{name}.mp4", size, NOW - made, None if served is None else NOW - served)


def part(name: str, size: int = 100, *, made: float) -> CachedFile:
    return CachedFile(f".{name}.mp4.0a1b2c3d.part", size, NOW - made, partial=True)


def evicted(decided: Plan) -> list[tuple[str, str]]:
    return [(f.name.removesuffix(".mp4"), reason) for f, reason in decided.evict]


def kept(decided: Plan) -> set[str]:
    return {f.name.removesuffix(".mp4") for f in decided.kept}


def test_expiry_goes_by_the_last_served_time_not_by_when_the_file_was_made() -> None:
    files = [
        clip("made_long_ago_served_recently", made=3 * 3600, served=2 * MIN),
        clip("made_long_ago_never_served", made=3 * 3600),
        clip("made_long_ago_served_long_ago", made=3 * 3600, served=20 * MIN),
        clip("made_recently_never_served", made=5 * MIN),
        clip("served_just_past_the_age", made=2 * 3600, served=15 * MIN + 1),
        clip("served_just_inside_the_age", made=2 * 3600, served=15 * MIN - 1),
    ]
    decided = plan(files, POLICY, now=NOW, free_bytes=None)
    assert evicted(decided) == [
        ("made_long_ago_never_served", "expired"),
        ("made_long_ago_served_long_ago", "expired"),
        ("served_just_past_the_age", "expired"),
    ]
    assert kept(decided) == {
        "made_long_ago_served_recently",
        "made_recently_never_served",
        "served_just_inside_the_age",
    }
    assert not decided.low_disk
    # The only notion of use is (mtime, last served): a CachedFile has no access time to read.
    assert set(CachedFile.__dataclass_fields__) == {"name", "size", "modified", "last_served", "partial"}
    assert files[0].last_used == NOW - 2 * MIN and files[1].last_used == NOW - 3 * 3600


def test_over_the_size_cap_the_least_recently_served_go_first_and_only_as_many_as_needed() -> None:
    files = [  # 5 x 300 = 1500 bytes against a 1000-byte cap: two must go, the two least recently used
        clip("c", 300, made=14 * MIN, served=3 * MIN),
        clip("a", 300, made=14 * MIN, served=10 * MIN),
        clip("e", 300, made=14 * MIN, served=1 * MIN),
        clip("b", 300, made=6 * MIN),  # never served, but made after a was last served: used more recently
        clip("d", 300, made=14 * MIN, served=2 * MIN),
    ]
    decided = plan(files, POLICY, now=NOW, free_bytes=None)
    assert evicted(decided) == [("a", "size"), ("b", "size")]
    assert kept(decided) == {"c", "d", "e"}
    assert sum(f.size for f in decided.kept) == 900 <= POLICY.max_bytes
    assert not decided.low_disk

    # Exactly at the cap nothing goes; one byte over and exactly one (the least recently served) goes.
    at_cap = [clip(n, 250, made=10 * MIN, served=s * MIN) for n, s in (("w", 4), ("x", 3), ("y", 2), ("z", 1))]
    assert evicted(plan(at_cap, POLICY, now=NOW, free_bytes=None)) == []
    over = [*at_cap, clip("v", 1, made=12 * MIN, served=2.5 * MIN)]
    assert evicted(plan(over, POLICY, now=NOW, free_bytes=None)) == [("w", "size")]


def test_ties_in_last_use_are_broken_by_name_so_the_order_is_stable() -> None:
    files = [clip(n, 400, made=5 * MIN, served=4 * MIN) for n in ("clip_3", "clip_1", "clip_2")]
    assert evicted(plan(files, POLICY, now=NOW, free_bytes=None)) == [("clip_1", "size")]


def test_low_disk_evicts_further_in_the_same_order_and_never_touches_files_in_use() -> None:
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=10**9, min_free_bytes=1000, in_use_seconds=30)
    files = [
        clip("watched", 5000, made=2 * 3600, served=5),  # in use: kept whatever the disk says
        clip("just_made", 4000, made=3),  # made seconds ago (a generation just finished): in use too
        clip("oldest", 300, made=10 * MIN, served=9 * MIN),
        clip("middle", 300, made=10 * MIN, served=5 * MIN),
        clip("newest", 300, made=10 * MIN, served=1 * MIN),
    ]
    decided = plan(files, policy, now=NOW, free_bytes=500)  # needs 500 more bytes: two files of 300
    assert evicted(decided) == [("oldest", "low_disk"), ("middle", "low_disk")]
    assert kept(decided) == {"watched", "just_made", "newest"}
    assert decided.low_disk

    # An expired file's bytes count towards the floor first: then one low_disk eviction is enough.
    with_expired = [*files, clip("stale", 200, made=2 * 3600, served=40 * MIN)]
    decided = plan(with_expired, policy, now=NOW, free_bytes=500)
    assert evicted(decided) == [("stale", "expired"), ("oldest", "low_disk")]
    assert decided.low_disk

    # Everything evictable gone and still under the floor: low_disk, and the files in use still stay.
    decided = plan(files, policy, now=NOW, free_bytes=0)
    assert evicted(decided) == [("oldest", "low_disk"), ("middle", "low_disk"), ("newest", "low_disk")]
    assert kept(decided) == {"watched", "just_made"}
    assert decided.low_disk

    # Nothing evictable at all, disk below the floor: nothing goes, but the plan says the disk is low.
    only_in_use = [f for f in files if f.name in {"watched.mp4", "just_made.mp4"}]
    decided = plan(only_in_use, policy, now=NOW, free_bytes=10)
    assert decided.evict == [] and decided.low_disk

    # Enough free disk: nothing goes, not low. Unknown free disk (S3): the floor does not apply.
    for free in (1000, None):
        decided = plan(files, policy, now=NOW, free_bytes=free)
        assert decided.evict == [] and not decided.low_disk, free

    # The floor is met by expiry alone: no low_disk eviction and no warning.
    decided = plan(with_expired, policy, now=NOW, free_bytes=800)
    assert evicted(decided) == [("stale", "expired")] and not decided.low_disk


def test_a_file_in_use_survives_even_when_expired_by_mtime_and_alone_over_the_cap() -> None:
    files = [
        clip("watched", 10_000, made=3 * 3600, served=5),  # made 3 h ago, 10x the cap, served 5 s ago
        clip("pulled", 2000, made=10, served=3600),  # an old row, but just pulled into this host
        clip("other", 100, made=10 * MIN, served=8 * MIN),
    ]
    decided = plan(files, POLICY, now=NOW, free_bytes=0)
    # The files in use count towards the cap (they fill the disk), so the one evictable file goes for size.
    assert evicted(decided) == [("other", "size")]
    assert kept(decided) == {"watched", "pulled"}
    assert decided.low_disk is False  # min_free_bytes=0

    # Just past in_use_seconds, the same 3-hour-old file expires.
    stale = [clip("watched", 10_000, made=3 * 3600, served=31 * MIN)]
    assert evicted(plan(stale, POLICY, now=NOW, free_bytes=None)) == [("watched", "expired")]
    moments = [clip("watched", 10_000, made=3 * 3600, served=29)]
    assert evicted(plan(moments, POLICY, now=NOW, free_bytes=None)) == []


def test_a_part_file_being_written_survives_and_an_old_one_is_abandoned() -> None:
    files = [
        part("clip_1_1", 50_000, made=60),  # being written: kept, though alone over the cap and "not in use"
        part("clip_2_2", 40, made=179),
        part("clip_3_3", 30, made=181),  # older than partial_grace_seconds: its writer is gone
        part("clip_4_4", 20, made=2 * 3600),  # abandoned, not "expired"
    ]
    decided = plan(files, POLICY, now=NOW, free_bytes=None)
    assert [(f.name, reason) for f, reason in decided.evict] == [
        (".clip_3_3.mp4.0a1b2c3d.part", "abandoned"),
        (".clip_4_4.mp4.0a1b2c3d.part", "abandoned"),
    ]
    assert {f.name for f in decided.kept} == {".clip_1_1.mp4.0a1b2c3d.part", ".clip_2_2.mp4.0a1b2c3d.part"}

    # Under a disk floor a .part being written still stays (and the plan reports the low disk).
    low = plan(files, Policy(min_free_bytes=10**6, partial_grace_seconds=180), now=NOW, free_bytes=0)
    assert {f.name for f in low.kept} == {".clip_1_1.mp4.0a1b2c3d.part", ".clip_2_2.mp4.0a1b2c3d.part"}
    assert low.low_disk


def test_stats_numbers_add_up() -> None:
    policy = Policy(max_age_seconds=15 * MIN, max_bytes=1100, min_free_bytes=2000, in_use_seconds=30)
    files = [
        clip("watched", 700, made=3600, served=2),  # kept: in use
        part("clip_9_9", 11, made=10),  # kept: being written
        part("clip_8_8", 13, made=3600),  # abandoned
        clip("stale1", 17, made=3600),  # expired
        clip("stale2", 19, made=3600, served=16 * MIN),  # expired
        clip("lru1", 200, made=14 * MIN),  # total 700+11+200+150+120+90 = 1271 > 1100: size
        clip("lru2", 150, made=12 * MIN),  # 1071 <= 1100, but 1500+49+200 < 2000: low_disk
        clip("lru3", 120, made=10 * MIN),  # 1500+49+200+150 = 1899 < 2000: low_disk
        clip("lru4", 90, made=5 * MIN),  # 2019 >= 2000: kept
    ]
    decided = plan(files, policy, now=NOW, free_bytes=1500)
    assert evicted(decided) == [
        (".clip_8_8.mp4.0a1b2c3d.part", "abandoned"),
        ("stale1", "expired"),
        ("stale2", "expired"),
        ("lru1", "size"),
        ("lru2", "low_disk"),
        ("lru3", "low_disk"),
    ]
    stats = decided.stats(free_before=1500)
    assert stats == {
        "files_before": 9,
        "files_after": 3,
        "bytes_before": 1320,
        "bytes_after": 801,
        "evicted": {"abandoned": 1, "expired": 2, "size": 1, "low_disk": 2},
        "free_bytes_before": 1500,
        "free_bytes_after": 2019,
        "low_disk": True,
    }
    # The same figures, derived: nothing is counted twice or lost.
    assert stats["files_before"] == len(files) == len(decided.kept) + len(decided.evict)
    assert stats["bytes_before"] == sum(f.size for f in files)
    assert stats["bytes_after"] == sum(f.size for f in decided.kept)
    assert sum(stats["evicted"].values()) == stats["files_before"] - stats["files_after"]  # type: ignore[attr-defined]
    assert stats["free_bytes_after"] == 1500 + stats["bytes_before"] - stats["bytes_after"]  # type: ignore[operator]

    empty = Plan().stats(free_before=None)
    assert empty == {
        "files_before": 0,
        "files_after": 0,
        "bytes_before": 0,
        "bytes_after": 0,
        "evicted": {},
        "free_bytes_before": None,
        "free_bytes_after": None,
        "low_disk": False,
    }


def test_the_policy_from_settings() -> None:
    settings = Settings.model_construct(
        playback_cache_max_age_minutes=7,
        playback_cache_max_bytes=12345,
        playback_cache_min_free_bytes=678,
        temp_clip_timeout_seconds=100,
    )
    assert Policy.from_settings(settings) == Policy(
        max_age_seconds=420, max_bytes=12345, min_free_bytes=678, in_use_seconds=30, partial_grace_seconds=160
    )
