"""The stage runner and the Dispatcher on clip stages, in this process against the real database and Redis.

A lost lease: the old worker's result and failure writes are rolled back, its heartbeat notices, and the
new holder's outcome stands. A refused transition (a person moved the clip on) closes the claim without a
retry. The Dispatcher's sweep finds export work from clip rows and claims alone.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from heaters import events
from heaters.auth.service import create_user
from heaters.clips import service as clips_service
from heaters.clips import stages as clip_stages
from heaters.db import get_engine, unit_of_work
from heaters.errors import LeaseLost, PermanentError
from heaters.models import ClipState, ReviewActionKind, SourceVideo
from heaters.pipeline import claims
from heaters.pipeline.dispatch import pending_ids, schedule, sweep
from heaters.pipeline.runner import StageContext, run_stage
from heaters.pipeline.stages import Stage
from heaters.review import leases
from heaters.review import service as review_service
from heaters.review.leases import Reviewer
from heaters.settings import get_settings
from heaters.videos.stages import write_cuts_and_clips
from tests.fixtures.workers import claim_row, collected_events, wait_for

C = ClipState
EXPORT = Stage.EXPORT
TAKER = "worker-b"


# ---- setup and reading ----------------------------------------------------------------------------------


@pytest.fixture
def redis_flushed(broker: Any) -> Any:
    """No message from an earlier test: what the Redis queues hold afterwards was sent by this test."""
    broker.client.flushdb()
    return broker


def queued_ids(broker: Any, queue: str, actor: str) -> list[int]:
    """The entity ids of the messages waiting in a queue (immediate and delayed) for one actor."""
    found: list[int] = []
    for name in (queue, f"{queue}.DQ"):
        for raw in broker.client.hvals(f"{broker.namespace}:{name}.msgs"):
            message = json.loads(raw)
            if message["actor_name"] == actor:
                found.extend(int(a) for a in message["args"])
    return sorted(found)


def add_clips(count: int, *, frames: int = 25) -> list[int]:
    """A cut, encoded video (its proxy is never read here) and `count` pending clips of `frames` frames each."""
    total = count * frames
    with unit_of_work() as session:
        video = SourceVideo(
            title="Runner test",
            ingest_state="encoded",
            needs_splicing=False,
            proxy_filepath="proxies/runner_test_proxy.mp4",
            fps_num=25,
            fps_den=1,
            frame_count=total,
            duration_seconds=total / 25,
            width=96,
            height=64,
        )
        session.add(video)
        session.flush()
        assert video.id is not None
        cuts = [(frames * i, 1.0) for i in range(1, count)]
        return write_cuts_and_clips(session, video.id, cuts, total)


def set_clip(engine: Engine, clip_id: int, **values: Any) -> None:
    """Test setup only: put a clip into a state the pipeline would have left it in."""
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE clips SET {assignments} WHERE id = :id"), {**values, "id": clip_id})


def clip(engine: Engine, clip_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM clips WHERE id = :i"), {"i": clip_id}).mappings().one()
    return dict(row)


def claim_of(engine: Engine, stage: Stage, entity_id: int) -> dict[str, Any]:
    row = claim_row(engine, stage.key, entity_id)
    assert row is not None, f"{stage.key} {entity_id} has no claim"
    return row


def export_claim(engine: Engine, clip_id: int) -> dict[str, Any]:
    return claim_of(engine, EXPORT, clip_id)


def expire_lease(engine: Engine, stage: Stage, entity_id: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE job_claims SET lease_until = now() - interval '1 second' WHERE stage = :s AND entity_id = :e"),
            {"s": stage.key, "e": entity_id},
        )


def take_over(stage: Stage, entity_id: int, *, worker: str = TAKER) -> claims.Claim:
    """Another worker takes the claim, as after the holder's lease ran out: expiry and takeover in one
    transaction, so the holder's heartbeat cannot slip in between."""
    with unit_of_work() as session:
        session.execute(
            text("UPDATE job_claims SET lease_until = now() - interval '1 second' WHERE stage = :s AND entity_id = :e"),
            {"s": stage.key, "e": entity_id},
        )
        taken = claims.claim(session, stage, entity_id, lease_seconds=60, worker_id=worker)
    assert taken is not None, "the expired claim should be open to another worker"
    return taken


@contextmanager
def events_heard(redis_url: str) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Events published while the block runs; calling the result waits until every earlier one has arrived
    (a marker published last has come through), so the absence of an event is a real observation."""
    with collected_events(redis_url) as received:
        mark = secrets.token_hex(4)
        events.publish("test.marker", topics=["test"], mark=f"start-{mark}")
        wait_for(lambda: any(e.get("mark") == f"start-{mark}" for e in received), timeout=10, what="subscription")

        def settled() -> list[dict[str, Any]]:
            events.publish("test.marker", topics=["test"], mark=f"end-{mark}")
            wait_for(lambda: any(e.get("mark") == f"end-{mark}" for e in received), timeout=10, what="the marker")
            return [e for e in received if e["type"] != "test.marker"]

        yield settled


def enter_exporting(ctx: StageContext) -> None:
    """What a real export does first: a short transaction into the running state."""
    with unit_of_work() as session:
        clips_service.transition(session, ctx.entity_id, C.EXPORTING, last_error=None)


# ---- a lost lease ---------------------------------------------------------------------------------------


def test_a_worker_whose_lease_was_taken_over_writes_no_result(
    engine: Engine, redis_flushed: Any, app_env: dict[str, str]
) -> None:
    clip_id = add_clips(1)[0]
    set_clip(engine, clip_id, ingest_state=C.REVIEW_APPROVED.value)
    seen: list[LeaseLost] = []
    taken: list[claims.Claim] = []

    def work_a(ctx: StageContext) -> None:
        enter_exporting(ctx)
        taken.append(take_over(EXPORT, ctx.entity_id))  # A stalled past its lease; B holds the claim now
        try:
            with unit_of_work() as session:  # A's results, in the transaction that marks its claim done
                clips_service.transition(
                    session, ctx.entity_id, C.EXPORTED, clip_filepath="clips/from_a.mp4", last_error=None
                )
                schedule(session, Stage.KEYFRAMES, ctx.entity_id)
                ctx.complete(session)
        except LeaseLost as error:
            seen.append(error)
            raise

    with events_heard(app_env["REDIS_URL"]) as heard:
        run_stage(EXPORT, clip_id, work_a)
        sent = heard()

    assert len(seen) == 1 and "taken over" in str(seen[0])
    row = clip(engine, clip_id)
    assert (row["ingest_state"], row["clip_filepath"], row["last_error"]) == ("exporting", None, None)
    held = export_claim(engine, clip_id)
    assert (held["state"], held["worker_id"], held["attempts"], held["last_error"]) == ("running", TAKER, 2, None)
    assert claim_row(engine, Stage.KEYFRAMES.key, clip_id) is None, "A's hand-off to keyframes was rolled back"
    assert queued_ids(redis_flushed, Stage.KEYFRAMES.queue.value, Stage.KEYFRAMES.actor_name) == []
    kinds = [e["type"] for e in sent if e.get("entity_id") == clip_id or e.get("clip_id") == clip_id]
    assert "stage.started" in kinds and "stage.failed" not in kinds and "stage.finished" not in kinds, kinds

    # B's outcome is the one that stands.
    with unit_of_work() as session:
        clips_service.transition(session, clip_id, C.EXPORTED, clip_filepath="clips/from_b.mp4", last_error=None)
        claims.succeed(session, taken[0])
    row = clip(engine, clip_id)
    assert (row["ingest_state"], row["clip_filepath"]) == ("exported", "clips/from_b.mp4")
    done = export_claim(engine, clip_id)
    assert (done["state"], done["worker_id"], done["attempts"]) == ("succeeded", TAKER, 2)


@pytest.mark.parametrize("failure", [RuntimeError("S3 went away"), PermanentError("The proxy is unreadable.")])
def test_a_worker_whose_lease_was_taken_over_records_no_failure(
    engine: Engine, redis_flushed: Any, failure: Exception
) -> None:
    clip_id = add_clips(1)[0]
    set_clip(engine, clip_id, ingest_state=C.REVIEW_APPROVED.value)

    def work_a(ctx: StageContext) -> None:
        enter_exporting(ctx)
        take_over(EXPORT, ctx.entity_id)
        raise failure

    run_stage(EXPORT, clip_id, work_a)

    row = clip(engine, clip_id)
    assert (row["ingest_state"], row["last_error"]) == ("exporting", None), "A's failure is not its to record"
    held = export_claim(engine, clip_id)
    assert (held["state"], held["worker_id"], held["attempts"]) == ("running", TAKER, 2)
    assert held["last_error"] is None and held["next_attempt_at"] is None
    assert queued_ids(redis_flushed, EXPORT.queue.value, EXPORT.actor_name) == [], "no retry was sent"


def test_the_heartbeat_notices_a_takeover_and_stops_extending(engine: Engine) -> None:
    with unit_of_work() as session:
        mine = claims.claim(session, Stage.DOWNLOAD, 7, lease_seconds=1, worker_id="worker-a")
    assert mine is not None

    def lease_until() -> datetime:
        return claim_of(engine, Stage.DOWNLOAD, 7)["lease_until"]

    first = lease_until()
    with claims.heartbeat(get_engine(), mine, lease_seconds=1) as lost:
        # It beats every third of the lease: the lease moves on while nobody else wants the claim.
        wait_for(lambda: lease_until() > first, timeout=5, what="the heartbeat to extend the lease")
        assert not lost.is_set()
        ctx = StageContext(Stage.DOWNLOAD, 7, get_settings().work_dir, mine, get_settings(), None, lost)
        ctx.check()
        ctx.progress(10.0)

        theirs = take_over(Stage.DOWNLOAD, 7)
        wait_for(lost.is_set, timeout=5, what="the heartbeat to find its claim taken over")
        with pytest.raises(LeaseLost):
            ctx.check()
        with pytest.raises(LeaseLost):
            ctx.progress(50.0)
    row = claim_of(engine, Stage.DOWNLOAD, 7)
    assert (row["worker_id"], row["state"], row["attempts"]) == (TAKER, "running", theirs.attempts)
    assert not claims.extend(engine, mine, 60), "the old holder can never extend the new holder's lease"


def test_the_runner_stops_work_whose_lease_was_lost(
    engine: Engine, redis_flushed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wired together: the runner's heartbeat (10 s lease, the shortest allowed) sets what ctx.check reads."""
    monkeypatch.setenv("JOB_LEASE_SECONDS", "10")
    get_settings.cache_clear()
    try:
        clip_id = add_clips(1)[0]
        set_clip(engine, clip_id, ingest_state=C.REVIEW_APPROVED.value)
        stopped: list[LeaseLost] = []

        def work_a(ctx: StageContext) -> None:
            enter_exporting(ctx)
            take_over(EXPORT, ctx.entity_id)
            wait_for(ctx.lost.is_set, timeout=10, what="the runner's heartbeat to notice the takeover")
            try:
                ctx.progress(50.0)
            except LeaseLost as error:
                stopped.append(error)
                raise

        run_stage(EXPORT, clip_id, work_a)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert len(stopped) == 1
    assert (clip(engine, clip_id)["ingest_state"], clip(engine, clip_id)["last_error"]) == ("exporting", None)
    held = export_claim(engine, clip_id)
    assert (held["state"], held["worker_id"], held["last_error"]) == ("running", TAKER, None)
    assert queued_ids(redis_flushed, EXPORT.queue.value, EXPORT.actor_name) == []


# ---- a refused transition -------------------------------------------------------------------------------


def test_an_export_refused_by_the_clips_state_is_closed_not_retried(
    engine: Engine, redis_flushed: Any, app_env: dict[str, str]
) -> None:
    """The reviewer approved, the Dispatcher queued the export, the reviewer undid the approval; then the
    worker got the message."""
    clip_id = add_clips(2)[0]
    with unit_of_work() as session:
        user = create_user(session, "vera", "vera-password")
        assert user.id is not None
        reviewer = Reviewer(user.id, "tab-" + secrets.token_hex(8))
        leases.take(session, reviewer, clip_id, lease_seconds=300)
        review_service.decide(session, clip_id, reviewer, ReviewActionKind.APPROVE)
    assert export_claim(engine, clip_id)["state"] == "queued", "the approval queues its export"
    with unit_of_work() as session:
        review_service.undo(session, reviewer, lease_seconds=300)
    redis_flushed.client.flushdb()  # the queued message is the one this run stands for
    assert clip(engine, clip_id)["ingest_state"] == "pending_review"

    with events_heard(app_env["REDIS_URL"]) as heard:
        run_stage(EXPORT, clip_id, clip_stages.run_export)
        sent = heard()

    closed = export_claim(engine, clip_id)
    assert closed["state"] == "succeeded" and closed["attempts"] == 1, closed
    assert closed["last_error"].startswith("Nothing to do"), closed["last_error"]
    assert "pending_review" in closed["last_error"]
    row = clip(engine, clip_id)
    assert (row["ingest_state"], row["last_error"], row["clip_filepath"]) == ("pending_review", None, None)
    assert queued_ids(redis_flushed, EXPORT.queue.value, EXPORT.actor_name) == [], "no retry was sent"
    assert not [e for e in sent if e["type"] == "stage.failed"], sent
    with unit_of_work() as session:  # and the Dispatcher has nothing to send for it either
        assert sweep(session)[EXPORT.key] == 0


# ---- the Dispatcher ---------------------------------------------------------------------------------------


def test_the_dispatcher_finds_export_work_from_clip_rows(engine: Engine, redis_flushed: Any) -> None:
    approved, crashed, running, failed, pending = add_clips(5)
    set_clip(engine, approved, ingest_state=C.REVIEW_APPROVED.value)
    for clip_id in (crashed, running):
        set_clip(engine, clip_id, ingest_state=C.EXPORTING.value)
        with unit_of_work() as session:
            assert claims.claim(session, EXPORT, clip_id, lease_seconds=300, worker_id=f"w{clip_id}") is not None
    expire_lease(engine, EXPORT, crashed)  # its worker died: nothing extends the lease any more
    set_clip(engine, failed, ingest_state=C.EXPORT_FAILED.value, last_error="The exported clip has 3 frames.")
    with unit_of_work() as session:
        gone = claims.claim(session, EXPORT, failed, lease_seconds=300, worker_id="w")
        assert gone is not None
        claims.fail(session, gone, "The exported clip has 3 frames.", permanent=True, max_attempts=5)

    with unit_of_work() as session:
        sent = sweep(session)
    assert sent[EXPORT.key] == 2, sent
    assert queued_ids(redis_flushed, EXPORT.queue.value, EXPORT.actor_name) == [approved, crashed]
    assert export_claim(engine, approved)["state"] == "queued"
    assert export_claim(engine, crashed)["state"] == "queued"
    assert (export_claim(engine, running)["state"], export_claim(engine, running)["worker_id"]) == (
        "running",
        f"w{running}",
    )
    assert export_claim(engine, failed)["state"] == "failed"
    assert claim_row(engine, EXPORT.key, pending) is None
    with unit_of_work() as session:  # by its state alone, not only because its claim has failed
        assert pending_ids(session, EXPORT, get_settings()) == [approved, crashed, running]

    with unit_of_work() as session:  # a second tick: everything is queued or held already
        assert sweep(session)[EXPORT.key] == 0

    redis_flushed.client.flushdb()
    with unit_of_work() as session:  # a person presses Retry
        assert clips_service.retry(session, failed) is EXPORT
    row = clip(engine, failed)
    assert (row["ingest_state"], row["last_error"]) == ("review_approved", None)
    with unit_of_work() as session:
        assert sweep(session)[EXPORT.key] == 1
    assert queued_ids(redis_flushed, EXPORT.queue.value, EXPORT.actor_name) == [failed]
    again = export_claim(engine, failed)
    assert (again["state"], again["attempts"]) == ("queued", 0)
