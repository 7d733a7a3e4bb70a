"""Claims in Postgres: one live claim per (stage, entity), leases, attempts, backoff, ticks."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text

from heaters.db import unit_of_work
from heaters.pipeline import claims
from heaters.pipeline.dispatch import claim_tick
from heaters.pipeline.policy import backoff_seconds, exhausted
from heaters.pipeline.stages import Stage

ENCODE = Stage.ENCODE


def _state(engine: Engine, entity: int = 1) -> tuple[str, int]:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT state, attempts FROM job_claims WHERE stage = :s AND entity_id = :e"),
            {"s": ENCODE.key, "e": entity},
        ).one()
    return str(row[0]), int(row[1])


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff_seconds(n, base=10, cap=50) for n in (1, 2, 3, 4)] == [10, 20, 40, 50]
    assert exhausted(3, 3) and not exhausted(2, 3)
    with pytest.raises(ValueError):
        backoff_seconds(0)


def test_only_one_of_two_racing_workers_gets_the_claim(engine: Engine) -> None:
    results: list[claims.Claim | None] = []
    barrier = threading.Barrier(2)

    def take(worker: str) -> None:
        barrier.wait()
        with unit_of_work() as session:
            results.append(claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id=worker))

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r is None for r in results) == [False, True]
    assert _state(engine) == ("running", 1)


def test_an_expired_lease_is_taken_over_and_counts_an_attempt(engine: Engine) -> None:
    with unit_of_work() as session:
        first = claims.claim(session, ENCODE, 1, lease_seconds=1, worker_id="crashed")
    assert first is not None
    with unit_of_work() as session:
        assert claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="early") is None
    time.sleep(1.2)
    with unit_of_work() as session:
        second = claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="rescuer")
    assert second is not None and second.attempts == 2
    assert not claims.extend(engine, first, 60)  # the crashed worker's heartbeat cannot steal it back
    assert claims.extend(engine, second, 60)


def test_failures_back_off_then_fail_for_good(engine: Engine) -> None:
    with unit_of_work() as session:
        claim = claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w")
        assert claim is not None
        delay = claims.fail(session, claim, "network down", permanent=False, max_attempts=2)
    assert delay == backoff_seconds(1)
    assert _state(engine) == ("retrying", 1)
    with unit_of_work() as session:  # not before its time
        assert claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w") is None
        session.execute(text("UPDATE job_claims SET next_attempt_at = now() - interval '1 second'"))
    with unit_of_work() as session:
        claim = claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w")
        assert claim is not None and claim.attempts == 2
        assert claims.fail(session, claim, "network still down", permanent=False, max_attempts=2) is None
    assert _state(engine) == ("failed", 2)
    with unit_of_work() as session:
        assert claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w") is None
        assert not claims.mark_queued(session, ENCODE, 1)
        assert claims.last_error(session, ENCODE, 1) == "network still down"
        claims.reset(session, ENCODE, 1)
    with unit_of_work() as session:
        claim = claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w")
        assert claim is not None and claim.attempts == 1


def test_a_permanent_failure_does_not_retry(engine: Engine) -> None:
    with unit_of_work() as session:
        claim = claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w")
        assert claim is not None
        assert claims.fail(session, claim, "not a video", permanent=True, max_attempts=5) is None
    assert _state(engine) == ("failed", 1)


def test_queued_work_is_not_queued_twice_until_its_ttl_passes(engine: Engine) -> None:
    with unit_of_work() as session:
        assert claims.mark_queued(session, ENCODE, 1)
        assert not claims.mark_queued(session, ENCODE, 1)
        session.execute(text("UPDATE job_claims SET lease_until = now() - interval '1 second'"))
        assert claims.mark_queued(session, ENCODE, 1)
        claim = claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w")
        assert claim is not None
        assert not claims.mark_queued(session, ENCODE, 1)  # running with a live lease
        claims.succeed(session, claim)
        assert claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="late") is None  # a stale duplicate
        assert claims.mark_queued(session, ENCODE, 1)  # the Dispatcher may queue finished work again
        assert claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="w2") is not None
    assert _state(engine) == ("running", 1)  # work wanted again counts its attempts afresh


def test_a_heartbeat_keeps_a_short_lease_alive(engine: Engine) -> None:
    with unit_of_work() as session:
        claim = claims.claim(session, ENCODE, 1, lease_seconds=1, worker_id="w")
    assert claim is not None
    with claims.heartbeat(engine, claim, lease_seconds=1) as lost:
        time.sleep(2.5)
        with unit_of_work() as session:
            assert claims.claim(session, ENCODE, 1, lease_seconds=60, worker_id="thief") is None
    assert not lost.is_set()


def test_two_schedulers_get_one_tick_per_period(engine: Engine) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def tick() -> None:
        barrier.wait()
        with unit_of_work() as session:
            results.append(claim_tick(session, "dispatch"))

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    with unit_of_work() as session:
        assert not claim_tick(session, "dispatch")
        session.execute(text("UPDATE job_claims SET lease_until = now() WHERE stage = 'tick:dispatch'"))
    with unit_of_work() as session:
        assert claim_tick(session, "dispatch")


def test_a_tick_claims_only_the_rest_of_its_clock_period(engine: Engine) -> None:
    """A tick at startup (periodiq fires one) must not swallow the next regular tick."""
    with unit_of_work() as session:
        assert claim_tick(session, "fast", period_seconds=2)
        assert not claim_tick(session, "fast", period_seconds=2)
    time.sleep(2.05 - time.time() % 2)  # just past the next 2-second boundary
    with unit_of_work() as session:
        assert claim_tick(session, "fast", period_seconds=2)


def test_messages_leave_only_after_the_commit(engine: Engine, broker) -> None:  # type: ignore[no-untyped-def]
    """A rolled-back transaction sends nothing; a committed one sends its message once."""
    from heaters.pipeline.dispatch import schedule

    broker.client.flushdb()
    queue = f"dramatiq:{Stage.ENCODE.queue.value}.msgs"

    def queued() -> int:
        return int(broker.client.hlen(queue))

    with pytest.raises(RuntimeError), unit_of_work() as session:
        assert schedule(session, Stage.ENCODE, 7)
        assert queued() == 0  # still inside the transaction: nothing sent yet
        raise RuntimeError("the caller fails after scheduling")
    assert queued() == 0
    with unit_of_work() as session:
        assert schedule(session, Stage.ENCODE, 7)
        assert not schedule(session, Stage.ENCODE, 7)  # already queued: not twice
        assert queued() == 0
    assert queued() == 1
