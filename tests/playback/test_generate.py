"""`generate` in this process on real media: a temp clip is exactly the proxy's frames, and failures reach the page.

The proxies are real `encode_proxy` output of synthetic sources whose frames all differ from one another, so
"this decoded frame equals proxy frame n" identifies the frame. The proxy is read from the test S3 through a
presigned URL (signatures enforced), as a worker does.
"""

from __future__ import annotations

import secrets
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from heaters.adapters import get_storage
from heaters.db import unit_of_work
from heaters.media.ffmpeg import seconds_arg
from heaters.playback import generate, names, service
from tests.fixtures.workers import collected_events, wait_for

from .helpers import Playback, Proxy, decode_frames, listing, queued, video_stream, waiting


def _decode(path: Path, proxy: Proxy, **kwargs: Any) -> list[bytes]:
    return decode_frames(path, width=proxy.width, height=proxy.height, **kwargs)


def _frame_index(proxy: Proxy, frame: bytes) -> int | None:
    return proxy.frames.index(frame) if frame in proxy.frames else None


@pytest.mark.parametrize(
    ("rate", "start", "end"),
    [
        ("25", 0, 37),  # the first scene, from frame 0
        ("25", 66, 107),  # a scene in the middle
        ("29.97", 107, 140),  # NTSC rate, up to the last frame of the video
        ("29.97", 40, 61),  # NTSC rate, inside a scene
        ("29.97", 66, 67),  # one frame
    ],
)
def test_a_temp_clip_is_exactly_the_proxys_frames(
    rate: str, start: int, end: int, playback: Playback, proxies: dict[str, Proxy]
) -> None:
    proxy = proxies[rate]
    clip_id = playback.clip(playback.video(proxy), start, end)
    row = playback.generate(clip_id)
    assert row["state"] == "ready", row["error"]
    assert row["error"] is None and row["lease_until"] is None and row["ready_at"] is not None
    assert row["filename"].startswith(f"clip_{clip_id}_") and names.parse(row["filename"]) == clip_id
    assert row["s3_key"] is None  # playback is not shared: nothing goes to S3
    path = playback.cache_file(row)
    assert row["size_bytes"] == path.stat().st_size > 0
    assert listing(path.parent) == [row["filename"]], "a .part file was left behind"

    stream = video_stream(path)
    assert int(stream["nb_frames"]) == int(stream["nb_read_frames"]) == end - start
    assert float(stream["start_time"]) == 0.0

    frames = _decode(path, proxy)
    assert len(frames) == end - start
    first, last = frames[0], frames[-1]
    assert first == proxy.frames[start], f"first frame is proxy frame {_frame_index(proxy, first)}, not {start}"
    assert last == proxy.frames[end - 1], f"last frame is proxy frame {_frame_index(proxy, last)}, not {end - 1}"
    assert frames == list(proxy.frames[start:end])  # every frame, pixel for pixel (a stream copy)


@pytest.mark.parametrize("rate", ["25", "29.97"])
def test_clip_time_t_shows_frame_start_plus_round_t_times_fps(
    rate: str, playback: Playback, proxies: dict[str, Proxy]
) -> None:
    """Seek the temp clip with ffmpeg `-ss t` and decode one frame: it is proxy frame start + round(t * fps).

    ffmpeg's decoding seek returns the first frame starting at or after t, so the times probed are frame
    starts (as the player seeks: n / fps, to the microsecond) and points 0.4 frame before a start.
    """
    proxy = proxies[rate]
    start, end = 37, 107  # crosses the cut at 66
    row = playback.generate(playback.clip(playback.video(proxy), start, end))
    path = playback.cache_file(row)
    for local in (1, 13, 28, 29, 30, end - start - 1):  # local frame 29 is frame 66, the first after the cut
        for t in (Fraction(local) / proxy.fps, (local - Fraction(2, 5)) / proxy.fps):
            seek = seconds_arg(t)
            expected = start + round(Fraction(seek) * proxy.fps)
            got = _decode(path, proxy, seek=seek, count=1)
            assert len(got) == 1
            assert got[0] == proxy.frames[expected], (
                f"t={seek}: proxy frame {_frame_index(proxy, got[0])} shown, expected {expected}"
            )


def test_generating_again_or_asking_again_changes_nothing(
    playback: Playback, proxies: dict[str, Proxy], broker: Any
) -> None:
    proxy = proxies["25"]
    clip_id = playback.clip(playback.video(proxy), 10, 20)
    row = playback.generate(clip_id)
    path = playback.cache_file(row)
    written = path.stat().st_mtime_ns
    before = waiting(broker.client)

    generate.generate(row["id"])  # a duplicate message: the row is ready, nobody takes it
    statuses = playback.request(clip_id)

    assert playback.row(clip_id) == row
    assert path.stat().st_mtime_ns == written
    assert statuses == {clip_id: service.TempClipStatus(clip_id, "ready", names.media_url(row["filename"]))}
    assert waiting(broker.client) == before, "a ready clip was sent for generation again"


def _failed_event(events: list[dict[str, Any]], clip_id: int) -> dict[str, Any] | None:
    return next((e for e in events if e["type"] == "temp_clip.failed" and e.get("clip_id") == clip_id), None)


def test_a_missing_proxy_fails_the_row_with_a_readable_error_and_tells_the_page(
    playback: Playback, proxies: dict[str, Proxy], app_env: dict[str, str], broker: Any
) -> None:
    proxy = proxies["25"]
    key = f"proxies/gone_{secrets.token_hex(4)}_proxy.mp4"
    assert get_storage().size(key) is None
    clip_id = playback.clip(playback.video(proxy, key=key, upload=False), 37, 66)

    with collected_events(app_env["REDIS_URL"]) as events:
        row = playback.generate(clip_id)
        event = wait_for(lambda: _failed_event(events, clip_id), timeout=10, what="the temp_clip.failed event")

    assert row["state"] == "failed" and row["lease_until"] is None
    assert event["topics"] == [f"clip:{clip_id}"]
    assert event["error"] == row["error"]
    assert not any(e["type"] == "temp_clip.ready" for e in events)
    assert listing(playback.cache_file(row).parent) == [], "nothing may be left in the cache"
    error = row["error"]
    assert any(words in error.lower() for words in ("404", "not found", "missing")), error  # what went wrong
    # Shown on the page: it must not carry the signed proxy URL (signature, access key id) to the browser.
    assert "X-Amz-Signature" not in error and "X-Amz-Credential" not in error, error
    assert app_env["AWS_ACCESS_KEY_ID"] not in error, error
    assert len(error) < 300, f"{len(error)} characters: {error}"


def test_retry_makes_a_failed_clip_again_under_a_new_name(
    playback: Playback, proxies: dict[str, Proxy], broker: Any
) -> None:
    proxy = proxies["29.97"]
    key = f"proxies/late_{secrets.token_hex(4)}_proxy.mp4"
    clip_id = playback.clip(playback.video(proxy, key=key, upload=False), 66, 107)
    failed = playback.generate(clip_id)
    assert failed["state"] == "failed"
    before = waiting(broker.client)

    with unit_of_work() as session:
        service.retry(session, clip_id)

    again = playback.row(clip_id)
    assert again["id"] == failed["id"]
    assert again["state"] == "generating" and again["error"] is None and again["worker_id"] is None
    assert again["filename"] != failed["filename"] and names.parse(again["filename"]) == clip_id
    sent = queued(broker.client, before)
    assert len(sent) == 1
    assert (sent[0].actor_name, sent[0].queue_name, sent[0].args) == (
        service.ACTOR,
        "temp_clips",
        (failed["id"],),
    )
    assert playback.request(clip_id)[clip_id].state == "generating"

    # The proxy is there now: the retried generation succeeds, frame-exact, under the new name.
    get_storage().upload_file(proxy.path, key, content_type="video/mp4")
    generate.generate(again["id"])
    ready = playback.row(clip_id)
    assert ready["state"] == "ready" and ready["filename"] == again["filename"] and ready["error"] is None
    assert _decode(playback.cache_file(ready), proxy) == list(proxy.frames[66:107])


def test_a_video_without_a_proxy_fails_with_its_reason(playback: Playback, app_env: dict[str, str]) -> None:
    clip_id = playback.clip(playback.bare_video(), 0, 10)
    with collected_events(app_env["REDIS_URL"]) as events:
        row = playback.generate(clip_id)
        event = wait_for(lambda: _failed_event(events, clip_id), timeout=10, what="the temp_clip.failed event")
    assert row["state"] == "failed"
    assert row["error"] == event["error"] == "The video has no proxy to cut this clip from."


def test_a_clip_past_the_end_of_the_video_fails_without_cutting(playback: Playback, proxies: dict[str, Proxy]) -> None:
    proxy = proxies["25"]
    clip_id = playback.clip(playback.video(proxy), 130, proxy.frame_count + 5)
    row = playback.generate(clip_id)
    assert row["state"] == "failed"
    assert f"past the video's {proxy.frame_count} frames" in row["error"], row["error"]
    assert listing(playback.cache_file(row).parent) == []


def test_a_copy_with_fewer_frames_than_the_clip_is_rejected(playback: Playback, proxies: dict[str, Proxy]) -> None:
    """The row says 150 frames, the proxy has 140: the last clip's copy comes out short and must not count."""
    proxy = proxies["25"]
    clip_id = playback.clip(playback.video(proxy, frame_count=150), 130, 145)
    row = playback.generate(clip_id)
    assert row["state"] == "failed"
    assert row["error"] == "The temp clip has 10 frames instead of 15.", row["error"]
    assert listing(playback.cache_file(row).parent) == [], "the short copy must not reach the cache"
