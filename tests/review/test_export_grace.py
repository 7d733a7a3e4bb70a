"""An approval queues its export after a grace period, so an undo inside it is never refused."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import text

from heaters.adapters import get_redis
from heaters.clips.stages import run_export
from heaters.db import unit_of_work
from heaters.models import ReviewActionKind
from heaters.pipeline.dispatch import pending_ids
from heaters.pipeline.runner import run_stage
from heaters.pipeline.stages import Stage
from heaters.settings import get_settings
from tests.review.conftest import Desk, Film, Team

GRACE = 30


@pytest.fixture
def grace(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EXPORT_GRACE_SECONDS", str(GRACE))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _delayed_exports() -> list[dict[str, Any]]:
    """The export messages waiting in Dramatiq's delay queue for `exports` (its Redis layout)."""
    redis = get_redis()
    messages = redis.hgetall("dramatiq:exports.DQ.msgs")
    return [json.loads(body) for body in messages.values()]


def test_an_approval_exports_only_after_the_grace_period_and_an_undo_inside_it_wins(
    desk: Desk, team: Team, film: Film, grace: None
) -> None:
    a, b, *_ = film.clips
    get_redis().delete("dramatiq:exports.DQ.msgs", "dramatiq:exports.DQ")
    desk.lease(team.ana, b)
    approved_at = time.time()
    desk.act(ReviewActionKind.APPROVE, b, team.ana)

    (message,) = [m for m in _delayed_exports() if m["args"] == [b]]
    assert message["actor_name"] == Stage.EXPORT.actor_name
    assert message["options"]["eta"] / 1000 >= approved_at + GRACE - 1  # not before the grace period ends
    with unit_of_work() as session:  # nor does the Dispatcher pick the clip up early
        assert b not in pending_ids(session, Stage.EXPORT, get_settings())

    desk.undo(team.ana)
    assert desk.state(b) == "pending_review"
    run_stage(Stage.EXPORT, b, run_export)  # the delayed message arrives: nothing to do, nothing written
    row = desk.clip(b)
    assert row is not None and (row["ingest_state"], row["clip_filepath"], row["last_error"]) == (
        "pending_review",
        None,
        None,
    )
    with unit_of_work() as session:
        claim = session.execute(
            text("SELECT state, last_error FROM job_claims WHERE stage = :s AND entity_id = :id"),
            {"s": Stage.EXPORT.key, "id": b},
        ).one()
    assert claim.state == "succeeded" and claim.last_error.startswith("Nothing to do")
    assert desk.state(a) == "pending_review"


def test_once_the_grace_period_is_over_the_dispatcher_finds_the_approved_clip(
    desk: Desk, team: Team, film: Film, grace: None
) -> None:
    _, b, *_ = film.clips
    desk.lease(team.ana, b)
    desk.act(ReviewActionKind.APPROVE, b, team.ana)
    desk.sql("UPDATE clips SET reviewed_at = now() - make_interval(secs => :s) WHERE id = :id", s=GRACE + 1, id=b)
    with unit_of_work() as session:
        assert b in pending_ids(session, Stage.EXPORT, get_settings())


def test_a_re_approval_after_an_undo_gets_a_whole_grace_period(desk: Desk, team: Team, film: Film, grace: None) -> None:
    _, b, *_ = film.clips
    get_redis().delete("dramatiq:exports.DQ.msgs", "dramatiq:exports.DQ")
    desk.lease(team.ana, b)
    desk.act(ReviewActionKind.APPROVE, b, team.ana)
    desk.undo(team.ana)
    desk.lease(team.ana, b)
    desk.act(ReviewActionKind.APPROVE, b, team.ana)  # the first message is still on its way: no second one
    assert len([m for m in _delayed_exports() if m["args"] == [b]]) == 1
    run_stage(Stage.EXPORT, b, run_export)  # the first message arrives before this approval's grace is over
    row = desk.clip(b)
    assert row is not None and (row["ingest_state"], row["clip_filepath"]) == ("review_approved", None)
    again = [m for m in _delayed_exports() if m["args"] == [b]]
    assert len(again) == 2 and max(m["options"]["eta"] for m in again) / 1000 >= time.time() + GRACE - 5
    desk.undo(team.ana)  # still inside the grace period: the undo is not refused
    assert desk.state(b) == "pending_review"
