"""/videos in a real browser: upload and URL forms, errors shown, states updating live."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, text

from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role
from tests.browser.test_sign_in import sign_in
from tests.media import synth

pytestmark = pytest.mark.browser  # `make test` runs these in one process, after the rest


@pytest.fixture
def reviewer(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "vera", "vera-password", role=Role.REVIEWER)


def test_an_uploaded_video_turns_ready_without_a_reload(
    page: Page,
    web_url: str,
    reviewer: None,
    start_worker,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source = synth.make_cut_video(tmp_path / "beach.mp4", fps=Fraction(25), scene_frames=(40, 35, 50))
    start_worker(MASTER_ENABLED="false")
    sign_in(page, web_url, "vera", "vera-password")
    expect(page.locator("#current-user")).to_have_text("vera")
    page.goto(f"{web_url}/videos")
    expect(page.get_by_text("No videos yet")).to_be_visible()

    page.locator("#video-upload input[type=file]").set_input_files(str(source.path))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("beach.mp4: video 1 queued for encoding.")).to_be_visible()
    row = page.locator("#video-1")
    expect(row).to_contain_text("beach")
    # No reload from here on: the worker's events reach the page through the live listener.
    expect(row.locator(".video-state")).to_contain_text("ready", timeout=90_000)
    expect(row).to_contain_text("3")  # three clips waiting for review


FAILED_DOWNLOAD = "The video is not available: HTTP Error 404: Not Found"


@pytest.fixture
def failed_video(engine: Engine) -> int:
    """A video whose download failed for good: the one kind of row that offers a Retry (to admins)."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                text(
                    "INSERT INTO source_videos (title, original_url, ingest_state, last_error)"
                    " VALUES ('gone', 'https://videos.example.com/gone', 'download_failed', :error) RETURNING id"
                ),
                {"error": FAILED_DOWNLOAD},
            ).scalar_one()
        )


def test_an_admin_can_retry_a_failed_video_and_a_reviewer_cannot(
    browser: Browser, web_url: str, reviewer: None, failed_video: int
) -> None:
    with unit_of_work() as session:
        create_user(session, "ada", "ada-password", role=Role.ADMIN)
    admin_context, reviewer_context = browser.new_context(), browser.new_context()
    try:
        admin, vera = admin_context.new_page(), reviewer_context.new_page()
        rows = {}
        for page, name in ((admin, "ada"), (vera, "vera")):
            sign_in(page, web_url, name, f"{name}-password")
            expect(page.locator("#current-user")).to_have_text(name)
            page.goto(f"{web_url}/videos")
            rows[name] = page.locator(f"#video-{failed_video}")
            # The row has rendered with its failure (the Retry sits beside the error): both users see why.
            expect(rows[name].locator(".video-state")).to_contain_text("download_failed")
            expect(rows[name]).to_contain_text(FAILED_DOWNLOAD)
        expect(rows["ada"].get_by_role("button", name="Retry"), "an admin is offered Retry").to_be_visible()
        expect(rows["vera"].get_by_text("Retry"), "a reviewer must not be offered Retry").to_have_count(0)
    finally:
        admin_context.close()
        reviewer_context.close()


def test_url_form_refuses_bad_addresses_and_queues_good_ones(page: Page, web_url: str, reviewer: None) -> None:
    sign_in(page, web_url, "vera", "vera-password")
    expect(page.locator("#current-user")).to_have_text("vera")
    page.goto(f"{web_url}/videos")
    page.get_by_placeholder("https://…").fill("ftp://example.com/movie.mp4")
    page.get_by_role("button", name="Add URL").click()
    expect(page.get_by_text(re.compile("Only http\\(s\\) URLs can be ingested"))).to_be_visible()
    expect(page.locator("#videos-table tbody tr")).to_have_count(0)

    page.get_by_placeholder("https://…").fill("https://videos.example.com/watch?v=42")
    page.get_by_role("button", name="Add URL").click()
    expect(page.get_by_text("queued for download")).to_be_visible()
    expect(page.locator("#videos-table tbody tr")).to_have_count(1)
    expect(page.locator("#videos-table")).to_contain_text("videos.example.com")
