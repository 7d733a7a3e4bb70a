"""`service.request`: however many tabs ask for a clip at once, one row, one message, one generation.

Messages are counted where Dramatiq's RedisBroker keeps them in the test Redis (`dramatiq:temp_clips`).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import text

from heaters.adapters import get_playback_cache
from heaters.db import unit_of_work
from heaters.playback import generate, names, service
from tests.fixtures.workers import collected_events, wait_for

from .helpers import Playback, Proxy, decode_frames, listing, queued, waiting

# Requests that collide in the very same instant are what can go wrong, and a burst of threads lines them
# up only now and then, so the test asks many times (an attempt takes about 30 ms).
ROUNDS = 120
THREADS = 8


def ask_at_once(clip_id: int, threads: int) -> tuple[list[service.TempClipStatus], list[str]]:
    """`threads` page requests for the clip, each in its own transaction, released together."""
    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    statuses: list[service.TempClipStatus] = []
    errors: list[str] = []

    def ask() -> None:
        try:
            with unit_of_work() as session:
                session.execute(text("SELECT 1"))  # every transaction is open before they all go
                barrier.wait(timeout=30)
                got = service.request(session, [clip_id])
            with lock:
                statuses.append(got[clip_id])
        except Exception as error:
            with lock:
                errors.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(w.is_alive() for w in workers), "a request hung"
    return statuses, errors


def test_concurrent_requests_insert_one_row_and_send_one_message(
    playback: Playback, proxies: dict[str, Proxy], broker: Any
) -> None:
    video = playback.video(proxies["25"], key="proxies/never_cut.mp4", upload=False)
    for attempt in range(ROUNDS):
        clip_id = playback.clip(video, attempt, attempt + 1)
        before = waiting(broker.client)
        statuses, errors = ask_at_once(clip_id, THREADS)
        assert errors == [], f"attempt {attempt}: {len(errors)} of {THREADS} simultaneous requests failed: {errors}"
        rows = [r for r in playback.rows() if r["clip_id"] == clip_id]
        assert len(rows) == 1, rows
        assert rows[0]["state"] == "generating" and names.parse(rows[0]["filename"]) == clip_id
        assert [m.args for m in queued(broker.client, before)] == [(rows[0]["id"],)]
        assert [s.state for s in statuses] == ["generating"] * THREADS


def _waiting_inserts(playback: Playback) -> int:
    """Requests whose INSERT INTO temp_clips waits for another transaction's row."""
    with playback.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO temp_clips%'"
                )
            ).scalar_one()
        )


def test_requests_for_the_same_clips_in_different_orders_both_succeed(
    playback: Playback, proxies: dict[str, Proxy], broker: Any
) -> None:
    """Two pages ask for overlapping clips, each with its own current clip first, while a third page's
    request for one of them has not committed yet: both must get their statuses (no deadlock)."""
    video = playback.video(proxies["25"], key="proxies/never_cut.mp4", upload=False)
    first, middle, last = (playback.clip(video, frame, frame + 1) for frame in range(3))
    before = waiting(broker.client)
    outcomes: dict[tuple[int, ...], Any] = {}

    def ask(order: list[int]) -> None:
        try:
            with unit_of_work() as session:
                statuses = service.request(session, order)
            outcomes[tuple(order)] = sorted((clip_id, s.state) for clip_id, s in statuses.items())
        except Exception as error:
            outcomes[tuple(order)] = f"{type(error).__name__}: {str(error).splitlines()[0]}"

    pages = [threading.Thread(target=ask, args=(order,)) for order in ([first, middle, last], [last, middle, first])]
    with unit_of_work() as other_page:
        service.request(other_page, [middle])
        for page in pages:
            page.start()
        wait_for(lambda: _waiting_inserts(playback) == 2, timeout=20, what="both requests to wait on the third")
    for page in pages:  # the third page has committed: the two go on
        page.join(timeout=30)

    expected = [(first, "generating"), (middle, "generating"), (last, "generating")]
    assert outcomes == {(first, middle, last): expected, (last, middle, first): expected}
    assert sorted(r["clip_id"] for r in playback.rows()) == [first, middle, last]
    assert len(queued(broker.client, before)) == 3


def test_a_real_worker_generates_the_clip_once(
    playback: Playback,
    proxies: dict[str, Proxy],
    broker: Any,
    start_worker: Any,
    app_env: dict[str, str],
    tmp_path: Path,
) -> None:
    proxy = proxies["29.97"]
    worker_cache = tmp_path / "worker_cache"
    clip_id = playback.clip(playback.video(proxy), 37, 66)  # uploaded after pipeline_env emptied the bucket
    assert waiting(broker.client) == 0  # pipeline_env emptied the test Redis

    statuses, errors = ask_at_once(clip_id, 6)
    assert len(statuses) + len(errors) == 6 and {s.state for s in statuses} == {"generating"}
    [row] = playback.rows()
    assert [(m.actor_name, m.queue_name, m.args) for m in queued(broker.client)] == [
        (service.ACTOR, "temp_clips", (row["id"],))
    ]

    with collected_events(app_env["REDIS_URL"]) as events:
        worker = start_worker(queues="temp_clips", PLAYBACK_CACHE_DIR=str(worker_cache), PLAYBACK_SHARED="false")
        wait_for(
            lambda: playback.row(clip_id)["state"] != "generating",
            timeout=90,
            what="the worker to finish the temp clip",
            logs=[worker.log],
        )
        ready = playback.row(clip_id)
        assert ready["state"] == "ready", ready["error"]
        event = wait_for(
            lambda: next((e for e in events if e["type"] == "temp_clip.ready"), None),
            timeout=10,
            what="the temp_clip.ready event",
        )
    assert event == {
        "type": "temp_clip.ready",
        "topics": [f"clip:{clip_id}"],
        "clip_id": clip_id,
        "url": names.media_url(row["filename"]),
    }
    wait_for(lambda: broker.client.hlen("dramatiq:temp_clips.msgs") == 0, timeout=30, what="the message's ack")
    wait_for(lambda: "temp_clips.ready" in worker.log.read_text(), timeout=30, what="the worker's log line")
    log = worker.log.read_text()
    assert log.count("temp_clips.ready") == 1, log
    assert "temp_clips.skipped" not in log and "temp_clips.failed" not in log, log
    assert waiting(broker.client) == 0

    assert ready["filename"] == row["filename"]
    assert ready["worker_id"] and not ready["worker_id"].startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert listing(worker_cache) == [row["filename"]]
    frames = decode_frames(worker_cache / row["filename"], width=proxy.width, height=proxy.height)
    assert frames == list(proxy.frames[37:66])
    # Checked last so the worker's part is checked every time: see the test above for this failure.
    assert errors == [], f"{len(errors)} of 6 simultaneous requests failed: {errors}"


def test_asking_again_sends_nothing_until_the_generation_looks_lost(
    playback: Playback, proxies: dict[str, Proxy], broker: Any
) -> None:
    clip_id = playback.clip(playback.video(proxies["25"], key="proxies/never_cut.mp4", upload=False), 0, 5)
    before = waiting(broker.client)
    playback.request(clip_id)
    first = playback.row(clip_id)
    playback.request(clip_id)
    playback.request(clip_id)
    assert waiting(broker.client) == before + 1, "a second request sent the generation again"

    # Never picked up for longer than RESEND_AFTER_SECONDS: the message was lost, send it again.
    with playback.engine.begin() as connection:
        connection.execute(text("UPDATE temp_clips SET requested_at = now() - interval '30 seconds'"))
    playback.request(clip_id)
    assert [m.args for m in queued(broker.client, before)] == [(first["id"],), (first["id"],)]
    again = playback.row(clip_id)
    assert again["filename"] == first["filename"] and again["requested_at"] > first["requested_at"]

    # Taken by a worker that died: once its lease is over, the Dispatcher sends it again.
    with playback.engine.begin() as connection:
        connection.execute(
            text("UPDATE temp_clips SET worker_id = 'gone:1:1', lease_until = now() - interval '1 second'")
        )
    with unit_of_work() as session:
        assert service.resend_stalled(session) == 1
    with unit_of_work() as session:
        assert service.resend_stalled(session) == 0
    assert len(queued(broker.client, before)) == 3
    taken_over = playback.row(clip_id)
    assert taken_over["worker_id"] is None and taken_over["lease_until"] is None


def test_a_ready_clip_whose_file_is_gone_is_made_again_under_a_new_name(
    playback: Playback, proxies: dict[str, Proxy], broker: Any
) -> None:
    proxy = proxies["25"]
    clip_id = playback.clip(playback.video(proxy), 66, 107)
    ready = playback.generate(clip_id)
    cache = get_playback_cache()
    cache.path(ready["filename"]).unlink()
    before = waiting(broker.client)

    with unit_of_work() as session:
        statuses = service.request(session, [clip_id], file_exists=cache.exists)

    assert statuses == {clip_id: service.TempClipStatus(clip_id, "generating")}
    again = playback.row(clip_id)
    assert again["state"] == "generating" and again["filename"] != ready["filename"]
    assert again["ready_at"] is None and again["size_bytes"] is None and again["s3_key"] is None
    assert [m.args for m in queued(broker.client, before)] == [(ready["id"],)]
    generate.generate(again["id"])
    made = playback.row(clip_id)
    assert made["state"] == "ready" and made["filename"] == again["filename"]
    assert decode_frames(cache.path(made["filename"]), width=proxy.width, height=proxy.height) == list(
        proxy.frames[66:107]
    )
