"""/admin/jobs in a real browser: pause and resume a queue, retry a failed clip; admins only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, text

from heaters import queue_control
from heaters.adapters import get_redis
from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role
from tests.browser.test_sign_in import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def board(engine: Engine) -> Iterator[int]:
    get_redis().delete(queue_control.PAUSED_KEY)
    with unit_of_work() as session:
        create_user(session, "rita", "rita-password", role=Role.REVIEWER)
        create_user(session, "ada", "ada-password", role=Role.ADMIN)
    with engine.begin() as db:
        video = db.execute(
            text("INSERT INTO source_videos (title, ingest_state) VALUES ('v', 'encoded') RETURNING id")
        ).scalar_one()
        clip = db.execute(
            text(
                "INSERT INTO clips "
                "(source_video_id, clip_identifier, start_frame, end_frame, ingest_state, last_error) "
                "VALUES (:v, 'jobs_1', 0, 10, 'export_failed', 'The exported clip has 3 frames instead of 10.') "
                "RETURNING id"
            ),
            {"v": video},
        ).scalar_one()
        db.execute(
            text(
                "INSERT INTO job_claims (stage, entity_id, state, attempts, last_error) "
                "VALUES ('clip.export', :c, 'failed', 5, 'The exported clip has 3 frames instead of 10.')"
            ),
            {"c": clip},
        )
    yield int(clip)
    get_redis().delete(queue_control.PAUSED_KEY)


def test_an_admin_pauses_resumes_and_retries_from_the_page(page: Page, web_url: str, board: int) -> None:
    sign_in(page, web_url, "ada", "ada-password")
    expect(page.locator("#current-user")).to_have_text("ada")
    page.goto(f"{web_url}/admin/jobs")
    exports = page.locator('[data-testid="jobs-queues"] tr', has_text="exports")
    expect(exports).to_contain_text("False")
    exports.get_by_role("button", name="Pause").click()
    expect(page.locator("#jobs-message")).to_have_text("Queue exports paused.")
    expect(exports.get_by_role("button", name="Resume")).to_be_visible()
    assert "exports" in queue_control.paused(get_redis())
    exports.get_by_role("button", name="Resume").click()
    expect(page.locator("#jobs-message")).to_have_text("Queue exports resumed.")
    assert "exports" not in queue_control.paused(get_redis())

    failure = page.locator('[data-testid="jobs-failures"] tr', has_text="3 frames instead of 10")
    failure.get_by_role("button", name="Retry").click()
    expect(page.locator("#jobs-message")).to_have_text(f"clip.export {board} queued again.")
    expect(page.locator('[data-testid="jobs-failures"]')).not_to_contain_text("3 frames instead of 10")
    expect(page.locator('[data-testid="jobs-ticks"]')).to_contain_text("dispatch")


def test_a_reviewer_is_sent_away(page: Page, web_url: str, board: int) -> None:
    sign_in(page, web_url, "rita", "rita-password")
    expect(page.locator("#current-user")).to_have_text("rita")
    page.goto(f"{web_url}/admin/jobs")
    expect(page).not_to_have_url(re.compile(r"/admin/jobs"))
    expect(page.locator('[data-testid="jobs-queues"]')).to_have_count(0)
