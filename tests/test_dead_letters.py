"""Dead letters (`{queue}.XQ`): listed, requeued and deleted over the real Redis and the real broker.

Every dead letter here is made the way a worker makes one: the message is enqueued through the broker,
fetched by a consumer and nacked (what Dramatiq's worker does once Retries gives up on it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
import redis as redis_lib
from dramatiq.common import current_millis
from sqlalchemy import Engine

from heaters import dead_letters, job_board
from heaters.db import unit_of_work
from heaters.devstack.service import free_port
from heaters.errors import NotFound
from heaters.queues import Queue
from heaters.settings import get_settings
from heaters_workers.broker import MAX_DRAMATIQ_RETRIES, build_broker
from tests.fixtures.workers import run_cli, wait_for

EXPORT = "clip.export"
CLEANUP = "schedule.playback_cleanup"


def kill(broker: Any, queue: str, actor: str, *args: Any) -> str:
    """One real dead letter: enqueued, fetched and nacked after its last retry; returns its id in XQ.

    Waits until the clock has moved past its death, so the next one dies strictly later."""
    sent = broker.enqueue(
        dramatiq.Message(
            queue_name=queue,
            actor_name=actor,
            args=args,
            kwargs={},
            options={"retries": MAX_DRAMATIQ_RETRIES, "traceback": "RuntimeError: boom"},
        )
    )
    member = sent.options["redis_message_id"]
    consumer = broker.consume(queue, prefetch=1, timeout=200)
    try:
        fetched = wait_for(lambda: next(consumer), timeout=15, what=f"the message on {queue} to be fetched")
        assert fetched.options["redis_message_id"] == member, "a stray message was waiting on the queue"
        consumer.nack(fetched)
    finally:
        consumer.close()
    died = broker.client.zscore(f"dramatiq:{queue}.XQ", member)
    assert died is not None, "the nacked message did not reach the dead-letter queue"
    wait_for(lambda: current_millis() > died, timeout=5, what="the clock to pass the last death")
    return str(member)


def dead_ids(redis: Any, queue: Queue) -> list[str]:
    return [row["id"] for row in dead_letters.listing(redis, queue)]


def ready(redis: Any, queue: Queue) -> list[dramatiq.Message[Any]]:
    """The messages waiting on a queue, in the order a worker takes them."""
    ids = redis.lrange(f"dramatiq:{queue.value}", 0, -1)
    assert redis.hlen(f"dramatiq:{queue.value}.msgs") == len(ids)
    return [dramatiq.Message.decode(redis.hget(f"dramatiq:{queue.value}.msgs", i)) for i in ids]


def counts(redis: Any) -> dict[str, tuple[int, int]]:
    return {q["queue"]: (q["ready"], q["dead"]) for q in job_board.queues(redis)}


@pytest.fixture
def redis(broker: Any) -> Iterator[Any]:
    """The test Redis, empty before and after (no message of another test counts here)."""
    broker.client.flushdb()
    yield broker.client
    broker.client.flushdb()


def test_listing_shows_real_dead_letters_newest_first_and_the_board_counts_them(
    engine: Engine, broker: Any, redis: Any
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    first = kill(broker, "exports", EXPORT, 101)
    second = kill(broker, "exports", EXPORT, 102)
    cleanup = kill(broker, "maintenance", CLEANUP)
    after = datetime.now(UTC)

    rows = dead_letters.listing(redis, Queue.EXPORTS)
    assert [(r["queue"], r["id"], r["actor"], r["args"]) for r in rows] == [
        ("exports", second, EXPORT, [102]),
        ("exports", first, EXPORT, [101]),
    ]
    for row in rows:
        since = datetime.fromisoformat(row["dead_since"])
        assert since.tzinfo is not None and before <= since <= after
    assert rows[0]["dead_since"] >= rows[1]["dead_since"]
    assert [r["id"] for r in dead_letters.listing(redis, Queue.EXPORTS, limit=1)] == [second]
    assert dead_letters.listing(redis, Queue.DEFAULT) == []
    assert [(r["id"], r["actor"], r["args"]) for r in dead_letters.listing(redis, Queue.MAINTENANCE)] == [
        (cleanup, CLEANUP, [])
    ]

    assert counts(redis) == {
        "default": (0, 0),
        "media_processing": (0, 0),
        "exports": (0, 2),
        "temp_clips": (0, 0),
        "background_jobs": (0, 0),
        "maintenance": (0, 1),
        "archival": (0, 0),
    }
    with unit_of_work() as session:
        board = job_board.board(session, redis, get_settings())
    assert [(r["queue"], r["id"]) for r in board["dead"]] == [
        ("exports", second),
        ("exports", first),
        ("maintenance", cleanup),
    ]


def test_requeue_one_sends_it_back_with_fresh_retries_and_leaves_the_others(broker: Any, redis: Any) -> None:
    first = kill(broker, "exports", EXPORT, 101)
    second = kill(broker, "exports", EXPORT, 102)
    cleanup = kill(broker, "maintenance", CLEANUP)
    original = dramatiq.Message.decode(redis.hget("dramatiq:exports.XQ.msgs", first))
    assert original.options["retries"] == MAX_DRAMATIQ_RETRIES

    assert dead_letters.requeue(redis, Queue.EXPORTS, first) == 1

    assert redis.zscore("dramatiq:exports.XQ", first) is None
    assert not redis.hexists("dramatiq:exports.XQ.msgs", first)
    (again,) = ready(redis, Queue.EXPORTS)
    assert (again.queue_name, again.actor_name, again.args, again.kwargs) == ("exports", EXPORT, (101,), {})
    assert again.message_id == original.message_id  # the same message, not a new one
    assert again.options["retries"] == 0
    assert again.options["redis_message_id"] != first  # a fresh entry on the queue
    assert dead_ids(redis, Queue.EXPORTS) == [second]
    assert dead_ids(redis, Queue.MAINTENANCE) == [cleanup]
    assert counts(redis)["exports"] == (1, 1) and counts(redis)["maintenance"] == (0, 1)

    # A worker takes it like any other message.
    consumer = broker.consume("exports", prefetch=1, timeout=200)
    try:
        taken = wait_for(lambda: next(consumer), timeout=15, what="the requeued message to be fetched")
        assert (taken.message_id, taken.args, taken.options["retries"]) == (original.message_id, (101,), 0)
        consumer.ack(taken)
    finally:
        consumer.close()
    assert counts(redis)["exports"] == (0, 1)


def test_requeue_all_of_a_queue_leaves_other_queues_alone(broker: Any, redis: Any) -> None:
    kill(broker, "exports", EXPORT, 101)
    kill(broker, "exports", EXPORT, 102)
    cleanup = kill(broker, "maintenance", CLEANUP)

    assert dead_letters.requeue(redis, Queue.EXPORTS) == 2

    assert dead_letters.listing(redis, Queue.EXPORTS) == []
    assert redis.zcard("dramatiq:exports.XQ") == 0 and redis.hlen("dramatiq:exports.XQ.msgs") == 0
    sent = ready(redis, Queue.EXPORTS)
    assert sorted(m.args for m in sent) == [(101,), (102,)]
    assert all(m.actor_name == EXPORT and m.options["retries"] == 0 for m in sent)
    assert dead_ids(redis, Queue.MAINTENANCE) == [cleanup]
    assert ready(redis, Queue.MAINTENANCE) == []
    assert dead_letters.requeue(redis, Queue.EXPORTS) == 0  # nothing left: nothing sent, no error
    assert len(ready(redis, Queue.EXPORTS)) == 2


def test_delete_one_and_all_and_unknown_ids_change_nothing(broker: Any, redis: Any) -> None:
    first = kill(broker, "exports", EXPORT, 101)
    second = kill(broker, "exports", EXPORT, 102)
    third = kill(broker, "exports", EXPORT, 103)
    cleanup = kill(broker, "maintenance", CLEANUP)

    assert dead_letters.delete(redis, Queue.EXPORTS, second) == 1
    assert dead_ids(redis, Queue.EXPORTS) == [third, first]
    assert not redis.hexists("dramatiq:exports.XQ.msgs", second)
    assert ready(redis, Queue.EXPORTS) == []  # deleted, not requeued

    snapshot = {q: dead_letters.listing(redis, q) for q in Queue}
    for unknown in ("no-such-id", second, cleanup):  # never was, already gone, and another queue's
        with pytest.raises(NotFound) as requeued:
            dead_letters.requeue(redis, Queue.EXPORTS, unknown)
        assert str(requeued.value) == f"No dead-lettered message {unknown} on exports."
        with pytest.raises(NotFound) as deleted:
            dead_letters.delete(redis, Queue.EXPORTS, unknown)
        assert str(deleted.value) == f"No dead-lettered message {unknown} on exports."
    assert {q: dead_letters.listing(redis, q) for q in Queue} == snapshot
    assert all(ready_count == 0 for ready_count, _ in counts(redis).values())

    assert dead_letters.delete(redis, Queue.EXPORTS) == 2
    assert dead_letters.listing(redis, Queue.EXPORTS) == []
    assert redis.zcard("dramatiq:exports.XQ") == 0 and redis.hlen("dramatiq:exports.XQ.msgs") == 0
    assert dead_ids(redis, Queue.MAINTENANCE) == [cleanup]
    assert dead_letters.delete(redis, Queue.EXPORTS) == 0


def test_a_requeue_the_broker_cannot_send_loses_nothing(broker: Any, redis: Any) -> None:
    first = kill(broker, "exports", EXPORT, 101)
    second = kill(broker, "exports", EXPORT, 102)
    before = dead_letters.listing(redis, Queue.EXPORTS)
    scores = {m: redis.zscore("dramatiq:exports.XQ", m) for m in (first, second)}
    data = {m: redis.hget("dramatiq:exports.XQ.msgs", m) for m in (first, second)}

    original = dramatiq.get_broker()
    dramatiq.set_broker(build_broker(f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there
    try:
        with pytest.raises(redis_lib.exceptions.ConnectionError):
            dead_letters.requeue(redis, Queue.EXPORTS, first)
        with pytest.raises(redis_lib.exceptions.ConnectionError):
            dead_letters.requeue(redis, Queue.EXPORTS)
    finally:
        dramatiq.set_broker(original)

    assert dead_letters.listing(redis, Queue.EXPORTS) == before  # same ids, same times of death
    assert {m: redis.zscore("dramatiq:exports.XQ", m) for m in (first, second)} == scores
    assert {m: redis.hget("dramatiq:exports.XQ.msgs", m) for m in (first, second)} == data
    assert ready(redis, Queue.EXPORTS) == []
    assert dead_letters.requeue(redis, Queue.EXPORTS, first) == 1  # and it is still whole
    assert [m.args for m in ready(redis, Queue.EXPORTS)] == [(101,)]


def test_the_cli_requeues_and_deletes_and_refuses_what_it_cannot_do(
    broker: Any, redis: Any, app_env: dict[str, str]
) -> None:
    env = {**os.environ, **app_env}
    first = kill(broker, "exports", EXPORT, 101)
    second = kill(broker, "exports", EXPORT, 102)
    cleanup = kill(broker, "maintenance", CLEANUP)

    done = run_cli(env, "jobs", "requeue", "exports", first)
    assert done.returncode == 0, done.stderr
    assert "1 dead-lettered message(s) of exports queued again." in done.stdout
    assert [(m.args, m.options["retries"]) for m in ready(redis, Queue.EXPORTS)] == [((101,), 0)]
    assert dead_ids(redis, Queue.EXPORTS) == [second]

    missing = run_cli(env, "jobs", "requeue", "exports", first)  # already requeued
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"No dead-lettered message {first} on exports." in missing.stderr

    for args in (("exports",), ("exports", second, "--all")):  # neither an id nor --all; or both
        refused = run_cli(env, "jobs", "delete", *args)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert "Name one dead letter's id, or pass --all" in refused.stderr
    assert dead_ids(redis, Queue.EXPORTS) == [second]

    allowed = "archival, background_jobs, default, exports, maintenance, media_processing, temp_clips"
    for args in (("requeue", "bogus"), ("requeue", "bogus", second), ("delete", "bogus", "--all")):
        unknown = run_cli(env, "jobs", *args)
        assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
        assert f"Unknown queue 'bogus'. Allowed: {allowed}" in unknown.stderr
    assert counts(redis)["exports"] == (1, 1) and counts(redis)["maintenance"] == (0, 1)

    dropped = run_cli(env, "jobs", "delete", "exports", "--all")
    assert dropped.returncode == 0, dropped.stderr
    assert "1 dead-lettered message(s) of exports deleted." in dropped.stdout
    assert dead_letters.listing(redis, Queue.EXPORTS) == []
    assert len(ready(redis, Queue.EXPORTS)) == 1  # the requeued one is not a dead letter any more
    assert dead_ids(redis, Queue.MAINTENANCE) == [cleanup]

    everything = run_cli(env, "jobs", "requeue", "maintenance")
    assert everything.returncode == 0, everything.stderr
    assert "1 dead-lettered message(s) of maintenance queued again." in everything.stdout
    assert [m.actor_name for m in ready(redis, Queue.MAINTENANCE)] == [CLEANUP]
    assert dead_letters.listing(redis, Queue.MAINTENANCE) == []


def test_dead_since_is_the_time_of_death(broker: Any, redis: Any) -> None:
    member = kill(broker, "exports", EXPORT, 7)
    died = redis.zscore("dramatiq:exports.XQ", member)
    (row,) = dead_letters.listing(redis, Queue.EXPORTS)
    shown = datetime.fromisoformat(row["dead_since"])
    assert abs(shown - datetime.fromtimestamp(died / 1000, UTC)) < timedelta(seconds=1)
