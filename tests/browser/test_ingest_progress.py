"""A video encoded in chunks, live in a real browser: /videos and /review show how much of it is encoded
and scanned and how many clips are out, and clips released a few at a time join an open review queue
without disturbing the clip on screen.

The worker's side is played by the test: it writes `proxy_chunks`, the video's scan columns and the
released clips straight into the database, then publishes the events a chunk's job publishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, text

from heaters import events
from heaters.adapters import get_storage
from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role
from heaters.videos.encode import encode_proxy
from tests.browser.test_sign_in import sign_in
from tests.fixtures.workers import wait_for
from tests.media import synth

pytestmark = pytest.mark.browser

FPS = Fraction(25)


@pytest.fixture
def reviewer(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "vera", "vera-password", role=Role.REVIEWER)


def add_chunked_video(
    engine: Engine, *, title: str, frames: int, chunk_frames: int, proxy_key: str | None = None
) -> tuple[int, int]:
    """A video in `encoding` with its chunks planned and none encoded yet; returns (id, number of chunks)."""
    starts = list(range(0, frames, chunk_frames))
    with engine.begin() as connection:
        video_id = int(
            connection.execute(
                text(
                    "INSERT INTO source_videos (title, ingest_state, needs_splicing, fps_num, fps_den,"
                    " duration_seconds, width, height, proxy_filepath, progress, scanned_frames, released_frames,"
                    " released_clips, filepath)"
                    " VALUES (:title, 'encoding', true, :num, :den, :duration, 320, 180, :proxy, 0, 0, 0, 0,"
                    " 'originals/walk.mp4') RETURNING id"
                ),
                {
                    "title": title,
                    "num": FPS.numerator,
                    "den": FPS.denominator,
                    "duration": float(frames / FPS),
                    "proxy": proxy_key,
                },
            ).scalar_one()
        )
        for index, start in enumerate(starts):
            end = start + chunk_frames if index < len(starts) - 1 else None
            connection.execute(
                text(
                    "INSERT INTO proxy_chunks (source_video_id, chunk_index, start_frame, end_frame,"
                    " analysis_width, analysis_height) VALUES (:video, :index, :start, :end, 256, 144)"
                ),
                {"video": video_id, "index": index, "start": start, "end": end},
            )
    return video_id, len(starts)


def encode_chunks(
    engine: Engine,
    video_id: int,
    indexes: Sequence[int],
    *,
    scanned: int,
    clips: Sequence[tuple[int, int]] = (),
    finished: bool = False,
) -> dict[str, int]:
    """What a chunk job commits: the chunks encoded, the scan's reach, the clips it released."""
    with engine.begin() as connection:
        for index in indexes:
            connection.execute(
                text(
                    "UPDATE proxy_chunks SET encoded_at = now(),"
                    " frame_count = coalesce(end_frame, :scanned) - start_frame"
                    " WHERE source_video_id = :video AND chunk_index = :index"
                ),
                {"video": video_id, "index": index, "scanned": scanned},
            )
        released = int(
            connection.execute(
                text("SELECT coalesce(released_clips, 0) FROM source_videos WHERE id = :v"), {"v": video_id}
            ).scalar_one()
        )
        for number, (start, end) in enumerate(clips, start=released + 1):
            connection.execute(
                text(
                    "INSERT INTO clips (source_video_id, clip_identifier, start_frame, end_frame, ingest_state,"
                    " processing_metadata) VALUES (:video, :identifier, :start, :end, 'pending_review',"
                    " CAST(:meta AS jsonb))"
                ),
                {
                    "video": video_id,
                    "identifier": f"{video_id}_segment_{number:03d}",
                    "start": start,
                    "end": end,
                    "meta": f'{{"created_from": "scene_detection", "segment_index": {number}}}',
                },
            )
        encoded, total = connection.execute(
            text("SELECT count(encoded_at), count(*) FROM proxy_chunks WHERE source_video_id = :v"), {"v": video_id}
        ).one()
        connection.execute(
            text(
                "UPDATE source_videos SET scanned_frames = :scanned, released_clips = :released,"
                " released_frames = coalesce(CAST(:released_frames AS integer), released_frames), progress = :progress,"
                " frame_count = CASE WHEN :finished THEN :scanned ELSE frame_count END,"
                " needs_splicing = NOT :finished WHERE id = :v"
            ),
            {
                "v": video_id,
                "scanned": scanned,
                "released": released + len(clips),
                "released_frames": clips[-1][1] if clips else None,
                "progress": round(100.0 * encoded / total, 1),
                "finished": finished,
            },
        )
        pending_total, video_pending = connection.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE source_video_id = :v) FROM clips"
                " WHERE ingest_state = 'pending_review'"
            ),
            {"v": video_id},
        ).one()
    # After the commit, as the chunk job does.
    events.publish(
        "video.chunks",
        topics=events.video_topics(video_id),
        video_id=video_id,
        encoded=int(encoded),
        total=int(total),
        scanned_frames=scanned,
    )
    if clips:
        events.publish(
            "video.clips_ready",
            topics=[events.COUNTS, *events.video_topics(video_id)],
            video_id=video_id,
            clips=len(clips),
            pending_total=int(pending_total),
            video_pending=int(video_pending),
        )
    return {"encoded": int(encoded), "total": int(total)}


def finish_join(engine: Engine, video_id: int) -> None:
    """The join: one proxy, the video ready."""
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE source_videos SET ingest_state = 'encoded', progress = NULL WHERE id = :v"), {"v": video_id}
        )
    events.publish("video.state", topics=events.video_topics(video_id), video_id=video_id, state="encoded")


def test_videos_page_shows_chunks_and_scan_live(page: Page, web_url: str, reviewer: None, engine: Engine) -> None:
    video_id, chunks = add_chunked_video(engine, title="Long walk", frames=8000, chunk_frames=1000)
    assert chunks == 8
    encode_chunks(engine, video_id, [0, 1, 2], scanned=3000, clips=[(0, 400), (400, 1100), (1100, 2600)])
    with engine.begin() as connection:  # a video encoded in one pass, for contrast: no bar
        plain = int(
            connection.execute(
                text(
                    "INSERT INTO source_videos (title, ingest_state, needs_splicing, progress)"
                    " VALUES ('Single pass', 'encoding', true, 40) RETURNING id"
                )
            ).scalar_one()
        )

    sign_in(page, web_url, "vera", "vera-password")
    expect(page.locator("#current-user")).to_have_text("vera")
    page.goto(f"{web_url}/videos")
    cell = page.locator(f"#video-{video_id} .video-state")
    expect(cell.locator(".ingest-chunks")).to_have_text("3/8 chunks encoded")
    expect(cell.locator(".ingest-scanned-text")).to_have_text("37.5% scanned")
    expect(cell.locator(".ingest-clips")).to_have_text("3 clips ready")
    bar = cell.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "3")
    expect(bar).to_have_attribute("aria-valuemax", "8")
    expect(page.locator(f"#video-{plain} .video-state")).to_contain_text("40%")
    expect(page.locator(f"#video-{plain} .ingest-progress")).to_have_count(0)

    # Two more chunks, out of order (the scan only reaches the end of the contiguous part): no reload.
    encode_chunks(engine, video_id, [3, 5], scanned=4000, clips=[(2600, 3700)])
    expect(cell.locator(".ingest-chunks")).to_have_text("5/8 chunks encoded")
    expect(cell.locator(".ingest-scanned-text")).to_have_text("50% scanned")
    expect(cell.locator(".ingest-clips")).to_have_text("4 clips ready")
    expect(bar).to_have_attribute("aria-valuenow", "5")
    expect(page.locator(f"#video-{video_id}")).to_contain_text("4 → review")

    encode_chunks(engine, video_id, [4, 6, 7], scanned=8000, clips=[(3700, 8000)], finished=True)
    expect(cell.locator(".ingest-chunks")).to_have_text("8/8 chunks encoded")
    expect(cell.locator(".ingest-scanned-text")).to_have_text("scan complete")
    expect(cell.locator(".ingest-clips")).to_have_text("5 clips ready")
    finish_join(engine, video_id)
    expect(cell).to_contain_text("ready")
    expect(cell.locator(".ingest-progress")).to_have_count(0)


# Frames per scene of the review test's source; the video is encoded in chunks of 80 frames.
SCENES = (40, 30, 45, 35, 50, 38, 30, 42)
CHUNK_FRAMES = 80
PROXY_KEY = "proxies/ingest_progress_proxy.mp4"


@pytest.fixture(scope="session")
def proxy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ingest_progress")
    source = synth.make_cut_video(folder / "walk.mp4", fps=FPS, scene_frames=SCENES, width=320, height=180)
    made = encode_proxy(source.path, folder, crf=28, timeout=300, on_progress=None)
    assert made.info.frame_count == sum(SCENES)
    return made.path


def _bounds(first: int, last: int) -> list[tuple[int, int]]:
    """Clips for scenes first..last (0-based, inclusive) of SCENES."""
    edges = [0]
    for length in SCENES:
        edges.append(edges[-1] + length)
    return [(edges[i], edges[i + 1]) for i in range(first, last + 1)]


def _shown_clip(page: Page) -> int:
    return int(page.locator('[data-testid="player"]').get_attribute("data-clip-id") or 0)


def _leases(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM review_leases")).scalar_one())


def test_clips_released_a_few_at_a_time_join_an_open_review_queue(
    page: Page,
    web_url: str,
    reviewer: None,
    engine: Engine,
    pipeline_env: dict[str, str],
    proxy_file: Path,
    start_worker: Callable[..., Any],
) -> None:
    get_storage().upload_file(proxy_file, PROXY_KEY)  # temp clips are cut from it (the bucket is new per test)
    start_worker(queues="temp_clips")
    frames = sum(SCENES)
    video_id, chunks = add_chunked_video(
        engine, title="Harbour walk", frames=frames, chunk_frames=CHUNK_FRAMES, proxy_key=PROXY_KEY
    )
    assert chunks == 4
    encode_chunks(engine, video_id, [0], scanned=80, clips=_bounds(0, 1))  # [0, 40) and [40, 70)

    sign_in(page, web_url, "vera", "vera-password")
    expect(page.locator("#current-user")).to_have_text("vera")
    page.goto(f"{web_url}/review")
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=\"player\"]'); return v && v.readyState >= 2; }",
        timeout=60_000,
    )
    first = _shown_clip(page)
    ingest = page.locator("#review-ingest")
    expect(ingest.locator(".ingest-chunks")).to_have_text("1/4 chunks encoded")
    expect(ingest.locator(".ingest-scanned-text")).to_have_text(f"{round(100 * 80 / frames, 1):g}% scanned")
    expect(ingest.locator(".ingest-clips")).to_have_text("2 clips ready")
    expect(page.locator("#review-position")).to_have_text("Clip 1 of 2 in this video")
    expect(page.locator("#video-pending")).to_have_text("2")
    segments = page.locator('[data-testid="timeline-segment"]')
    expect(segments).to_have_count(2)
    assert _leases(engine) == 2
    # The element on screen, marked: it must stay the same element, on the same clip, with the same source.
    player = page.locator('[data-testid="player"]')
    src = player.get_attribute("src")
    player.evaluate("v => { v.dataset.marked = 'yes'; }")

    # Each chunk releases a few more clips; the queue takes them behind the clip on screen.
    for indexes, scanned, scenes, released in (([1], 160, (2, 3), 4), ([2], 240, (4, 6), 7)):
        encode_chunks(engine, video_id, indexes, scanned=scanned, clips=_bounds(*scenes))
        expect(ingest.locator(".ingest-chunks")).to_have_text(f"{indexes[-1] + 1}/4 chunks encoded")
        expect(ingest.locator(".ingest-clips")).to_have_text(f"{released} clips ready")
        expect(page.locator("#review-position")).to_have_text(f"Clip 1 of {released} in this video")
        expect(page.locator("#video-pending")).to_have_text(str(released))
        expect(page.locator("#nav-pending")).to_have_text(str(released))
        expect(segments).to_have_count(released)
        wait_for(lambda released=released: _leases(engine) == min(6, released), timeout=30, what="the queue's top-up")
        expect(player).to_have_attribute("data-clip-id", str(first))
        expect(player).to_have_attribute("data-marked", "yes")
        assert player.get_attribute("src") == src
    assert page.locator('[data-testid="player"]').evaluate("v => v.readyState >= 2 && !v.paused")

    # The queue kept source order: the next clip is the second one, already prepared in its own element.
    with engine.connect() as connection:
        ids = [int(i) for i in connection.execute(text("SELECT id FROM clips ORDER BY start_frame")).scalars()]
    assert ids[0] == first
    page.keyboard.press("a")
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(ids[1]))
    expect(page.locator("#review-position")).to_have_text("Clip 2 of 7 in this video")
    # The next chunk's event counts the pending clips from the database: the approval must be in it first.
    deadline = time.monotonic() + 30
    while _state(engine, first) != "review_approved":
        assert time.monotonic() < deadline, f"the approval of clip {first} never reached the database"
        time.sleep(0.1)

    # The last chunk: the scan is complete, then the join makes the video ready and the bar goes.
    encode_chunks(engine, video_id, [3], scanned=frames, clips=_bounds(7, 7), finished=True)
    expect(ingest.locator(".ingest-chunks")).to_have_text("4/4 chunks encoded")
    expect(ingest.locator(".ingest-scanned-text")).to_have_text("scan complete")
    expect(ingest.locator(".ingest-clips")).to_have_text("8 clips ready")
    expect(page.locator("#review-position")).to_have_text("Clip 2 of 8 in this video")
    finish_join(engine, video_id)
    expect(ingest).to_have_count(0)
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(ids[1]))
    expect(page.locator("#pending-total")).to_have_text("7")


def test_an_empty_queue_for_a_video_still_encoding_fills_as_its_first_clips_appear(
    page: Page, web_url: str, reviewer: None, engine: Engine
) -> None:
    frames = sum(SCENES)
    video_id, _ = add_chunked_video(engine, title="Night ferry", frames=frames, chunk_frames=CHUNK_FRAMES)
    sign_in(page, web_url, "vera", "vera-password")
    expect(page.locator("#current-user")).to_have_text("vera")
    page.goto(f"{web_url}/review?video={video_id}")
    expect(page.get_by_text("No clip of this video is waiting for review.")).to_be_visible()
    ingest = page.locator("#review-ingest")
    expect(ingest.locator(".ingest-chunks")).to_have_text("0/4 chunks encoded")
    expect(ingest.locator(".ingest-clips")).to_have_text("0 clips ready")

    encode_chunks(engine, video_id, [1], scanned=0)  # a later chunk first: nothing scanned, no clips yet
    expect(ingest.locator(".ingest-chunks")).to_have_text("1/4 chunks encoded")
    expect(ingest.locator(".ingest-scanned-text")).to_have_text("0% scanned")
    expect(page.locator("#review-empty")).to_be_visible()

    encode_chunks(engine, video_id, [0], scanned=160, clips=_bounds(0, 2))
    with engine.connect() as connection:
        first = int(connection.execute(text("SELECT min(id) FROM clips")).scalar_one())
    expect(page.locator('[data-testid="player"]')).to_have_attribute("data-clip-id", str(first))
    expect(page.locator("#review-title")).to_have_text("Night ferry")
    expect(page.locator("#review-position")).to_have_text("Clip 1 of 3 in this video")
    expect(ingest.locator(".ingest-chunks")).to_have_text("2/4 chunks encoded")
    expect(ingest.locator(".ingest-clips")).to_have_text("3 clips ready")
    expect(page.locator("#video-pending")).to_have_text("3")


def _state(engine: Engine, clip_id: int) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(text("SELECT ingest_state FROM clips WHERE id = :c"), {"c": clip_id}).scalar_one()
        )
