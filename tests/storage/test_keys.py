"""S3 key naming (reference 7.1) with the extension bug fixed. Pure."""

from __future__ import annotations

from datetime import datetime

import pytest

from heaters.storage import keys


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Big Air: Final (2025)!", "Big_Air_Final_2025"),
        ("__a//b..c__", "a_b_c"),
        ("", "default"),
        (None, "default"),
        ("ünïcødé", "n_c_d"),
        ("x" * 150, "x" * 100),
    ],
)
def test_sanitize(raw: str | None, clean: str) -> None:
    assert keys.sanitize(raw) == clean


def test_keys_keep_their_extensions() -> None:
    now = datetime(2026, 11, 29, 1, 2, 3)
    assert keys.original_key("My Video", 7, "clip.MOV", now) == "originals/My_Video_7_20261129_010203.mov"
    assert keys.original_key(None, 7, "no-extension", now) == "originals/unknown_7_20261129_010203.mp4"
    assert keys.proxy_key("My Video", 7) == "proxies/My_Video_7_proxy.mp4"
    assert keys.master_key("My Video", 7) == "masters/My_Video_7_master.mp4"
    assert keys.clip_key("My Video", "7_segment_001", 42) == "clips/My_Video_7_segment_001.mp4"
    assert keys.clip_key(None, "7_segment_001", 42) == "clips/clip_42_7_segment_001.mp4"
    assert keys.keyframe_key(42, "multi", 2) == "artifacts/keyframes/clip_42_multi_2.jpg"


@pytest.mark.parametrize("bad", ["", "/abs", "trailing/", "a//b", "x" * 1025])
def test_invalid_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        keys.validate_key(bad)


def test_s3_uris_reduce_to_keys() -> None:
    assert keys.strip_s3_uri("s3://media/proxies/a.mp4", "media") == "proxies/a.mp4"
    assert keys.strip_s3_uri("proxies/a.mp4", "media") == "proxies/a.mp4"
