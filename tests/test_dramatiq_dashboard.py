"""/admin/dramatiq: Dramatiq's dashboard over the real Redis, with real messages, for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from heaters import api, jobs
from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role

PASSWORD = "a-long-password"
QUEUE = "exports"


def _signed_in(client: TestClient, username: str) -> TestClient:
    response = client.post("/api/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def messages(engine: Engine, broker: Any) -> Iterator[list[str]]:
    """Two waiting export messages and one delayed, sent the way the product sends them (after commit)."""
    redis = broker.client
    redis.delete(*[k for k in redis.keys("dramatiq:exports*")] or ["-"])
    with unit_of_work():
        jobs.enqueue("clip.export", QUEUE, 101)
        jobs.enqueue("clip.export", QUEUE, 102)
        jobs.enqueue("clip.export", QUEUE, 103, delay_ms=3_600_000)
    ids = [m.decode() for m in redis.hkeys("dramatiq:exports.msgs")]
    yield ids
    redis.delete(*[k for k in redis.keys("dramatiq:exports*")] or ["-"])


@pytest.fixture
def users(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "boss", PASSWORD, role=Role.ADMIN)
        create_user(session, "rita", PASSWORD)


def test_an_admin_sees_the_queues_and_their_messages(messages: list[str], users: None) -> None:
    assert len(messages) == 2
    with TestClient(api.create_api()) as client:
        _signed_in(client, "boss")
        overview = client.get("/admin/dramatiq/")
        assert overview.status_code == 200, overview.text
        assert QUEUE in overview.text
        queue = client.get(f"/admin/dramatiq/queues/{QUEUE}/standard")
        assert queue.status_code == 200, queue.text
        assert "clip.export" in queue.text and all(m in queue.text for m in messages)
        delayed = client.get(f"/admin/dramatiq/queues/{QUEUE}/delayed")
        assert delayed.status_code == 200 and "clip.export" in delayed.text
        one = client.get(f"/admin/dramatiq/queues/{QUEUE}/standard/{messages[0]}")
        assert one.status_code == 200 and ("101" in one.text or "102" in one.text)


def test_a_reviewer_is_refused_and_a_visitor_is_sent_to_sign_in(messages: list[str], users: None) -> None:
    with TestClient(api.create_api()) as visitor:
        response = visitor.get(f"/admin/dramatiq/queues/{QUEUE}/standard", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fadmin%2Fdramatiq%2Fqueues%2Fexports%2Fstandard"
    with TestClient(api.create_api()) as reviewer:
        _signed_in(reviewer, "rita")
        response = reviewer.get("/admin/dramatiq/", follow_redirects=False)
        assert response.status_code == 403 and "clip.export" not in response.text
        delete = reviewer.post("/admin/dramatiq/delete-message", data={"queue_name": QUEUE}, follow_redirects=False)
        assert delete.status_code == 403
