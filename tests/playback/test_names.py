"""Temp clip names, keys and URLs (pure): the media route trusts nothing these reject."""

from __future__ import annotations

from pathlib import Path

import pytest

from heaters.playback import names
from heaters.playback.cache import PlaybackCache

BAD_NAMES = [
    "",
    "foo.mp4",
    "clip_1.mp4",
    "clip_x_1.mp4",
    "clip_1_x.mp4",
    "clip__1.mp4",
    "clip_1_.mp4",
    "clip_-1_2.mp4",
    "clip_1_2.MP4",
    "clip_1_2.mov",
    "clip_1_2mp4",
    "Clip_1_2.mp4",
    "clip_1_2.mp4.part",
    " clip_1_2.mp4",
    "clip_1_2.mp4 ",
    "clip_1_2.mp4\n",
    "clip_1_2.mp4\x00",
    "clip_1_2.mp4\x00.jpg",
    "../clip_1_2.mp4",
    "..\\clip_1_2.mp4",
    "clip_1_2.mp4/..",
    "sub/clip_1_2.mp4",
    "/clip_1_2.mp4",
    "../../etc/passwd",
    "clip_1234567890123_2.mp4",  # 13 digits of id
    "clip_1_12345678901234567.mp4",  # 17 digits of time
]

# Digits that are not ASCII: `int()` reads them, but no temp clip name is ever written with them.
NON_ASCII_DIGITS = [
    "clip_\u0661_2.mp4",  # ARABIC-INDIC DIGIT ONE
    "clip_1_\u0662.mp4",  # ARABIC-INDIC DIGIT TWO in the time
    "clip_\uff11_2.mp4",  # FULLWIDTH DIGIT ONE
    "clip_\u0967_2.mp4",  # DEVANAGARI DIGIT ONE
]


def test_a_temp_filename_is_clip_id_and_millis() -> None:
    assert names.temp_filename(7, 1_700_000_000_123) == "clip_7_1700000000123.mp4"
    assert names.temp_filename(1, 0) == "clip_1_0.mp4"
    for clip_id, millis in [(0, 5), (-3, 5), (3, -1)]:
        with pytest.raises(ValueError):
            names.temp_filename(clip_id, millis)


@pytest.mark.parametrize(
    ("clip_id", "millis"), [(1, 0), (42, 1_796_153_876_413), (999_999_999_999, 9_999_999_999_999_999)]
)
def test_parse_gives_back_the_clip_id(clip_id: int, millis: int) -> None:
    filename = names.temp_filename(clip_id, millis)
    assert names.parse(filename) == clip_id
    assert names.s3_key(filename) == f"playback/{filename}"
    assert names.media_url(filename) == f"/media/temp/{filename}"


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_anything_else_is_not_a_temp_clip_name(name: str) -> None:
    assert names.parse(name) is None
    with pytest.raises(ValueError):
        names.s3_key(name)
    with pytest.raises(ValueError):
        names.media_url(name)


def test_only_ascii_digits_make_a_temp_clip_name() -> None:
    """`temp_filename` writes ASCII digits only, so a name with other Unicode digits was never made here."""
    accepted = {ascii(name): names.parse(name) for name in NON_ASCII_DIGITS if names.parse(name) is not None}
    assert accepted == {}, f"accepted as temp clip names (name: clip id): {accepted}"


def test_partial_files_never_look_like_temp_clips(tmp_path: Path) -> None:
    """The route and the cleanup only ever match finished files, never a writer's `.part`."""
    cache = PlaybackCache(tmp_path / "cache")
    partial = cache.partial("clip_5_1700000000000.mp4")
    assert partial.parent == tmp_path / "cache" and partial.name.startswith(".clip_5_1700000000000.mp4.")
    assert partial.name.endswith(".part") and names.parse(partial.name) is None
    assert cache.partial("clip_5_1700000000000.mp4") != partial  # unique per writer
    assert cache.path("clip_5_1700000000000.mp4") == tmp_path / "cache" / "clip_5_1700000000000.mp4"
    with pytest.raises(ValueError):
        cache.path("../clip_5_1700000000000.mp4")
