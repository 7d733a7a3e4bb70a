"""/metrics: counters summed across real processes, state read at scrape, admins and scrapers only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from heaters import api, jobs, metrics
from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role
from heaters.settings import get_settings

PASSWORD = "a-long-password"
COUNT_IN_A_PROCESS = (
    "from heaters import metrics; "
    "metrics.outcome('clip.export', 'exports', 'succeeded', 1.5); metrics.outcome('clip.export', 'exports', 'failed')"
)


def _value(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return None


@pytest.fixture
def users(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "boss", PASSWORD, role=Role.ADMIN)
        create_user(session, "rita", PASSWORD)


def _client(username: str | None) -> TestClient:
    client = TestClient(api.create_api())
    if username:
        response = client.post("/api/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
        assert response.status_code == 303
    return client


def test_counters_of_several_processes_add_up(
    users: None, broker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, **metrics.prepare_dir(tmp_path / "metrics")}
    for _ in range(2):  # two separate worker processes, each counting one success and one failure
        done = subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path / "metrics"))
    with unit_of_work():  # two messages waiting in a real Redis queue
        jobs.enqueue("clip.export", "exports", 1)
        jobs.enqueue("clip.export", "exports", 2)
    with _client("boss") as client:
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    labels = {"stage": "clip.export", "queue": "exports"}
    assert _value(text, "heaters_jobs_total", outcome="succeeded", **labels) == 2.0
    assert _value(text, "heaters_jobs_total", outcome="failed", **labels) == 2.0
    assert _value(text, "heaters_job_duration_seconds_count", **labels) == 2.0
    assert _value(text, "heaters_job_duration_seconds_sum", **labels) == 3.0
    assert (_value(text, "heaters_queue_messages", queue="exports", kind="ready") or 0) >= 2.0
    assert "heaters_playback_cache_bytes" in text and "heaters_claims" in text
    broker.client.delete("dramatiq:exports.msgs", "dramatiq:exports")


def test_only_admins_and_the_scraper_token_get_metrics(users: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with _client(None) as visitor:
        assert visitor.get("/metrics").status_code == 401
        assert visitor.get("/metrics", headers={"Authorization": "Bearer guess"}).status_code == 401
    with _client("rita") as reviewer:
        refused = reviewer.get("/metrics")
        assert refused.status_code == 403 and "heaters_" not in refused.text
    monkeypatch.setenv("METRICS_TOKEN", "scraper-secret-token")
    get_settings.cache_clear()
    try:
        with _client(None) as scraper:
            allowed = scraper.get("/metrics", headers={"Authorization": "Bearer scraper-secret-token"})
            assert allowed.status_code == 200 and "heaters_queue_messages" in allowed.text
            assert scraper.get("/metrics", headers={"Authorization": "Bearer scraper-secret"}).status_code == 401
    finally:
        monkeypatch.delenv("METRICS_TOKEN")
        get_settings.cache_clear()
