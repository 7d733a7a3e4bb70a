"""/healthz and /readyz against the real services, including a Redis outage and recovery."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from heaters.adapters import get_redis
from heaters.api import create_api


@pytest.fixture
def client(migrated: str) -> Iterator[TestClient]:
    with TestClient(create_api()) as client:
        yield client


def test_healthz_needs_no_login_and_no_dependency(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_every_dependency(client: TestClient) -> None:
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "s3", "ffmpeg"}
    assert all(check["ok"] for check in body["checks"].values())
    assert "at head" in body["checks"]["database"]["detail"]


def test_readyz_turns_503_naming_redis_while_it_is_down(client: TestClient, redis_server) -> None:  # type: ignore[no-untyped-def]
    redis_server.stop()
    try:
        get_redis().connection_pool.disconnect()
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["redis"]["detail"] == "unreachable (ConnectionError)"
        assert "127.0.0.1" not in response.text  # no hosts or ports for unauthenticated callers
        assert body["checks"]["database"]["ok"] and body["checks"]["s3"]["ok"]
    finally:
        redis_server.start()
    assert client.get("/readyz").status_code == 200


def test_readyz_names_a_database_behind_its_migrations(client: TestClient, migrated: str) -> None:
    from heaters import migrations

    migrations.downgrade(migrated, "base")
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "heaters db upgrade" in response.json()["checks"]["database"]["detail"]
    finally:
        migrations.upgrade(migrated)
    assert client.get("/readyz").status_code == 200
