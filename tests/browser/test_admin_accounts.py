"""/admin: an admin adds, deactivates, reactivates and re-passwords accounts from the page; a reviewer cannot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from heaters.auth.service import authenticate, create_user
from heaters.db import unit_of_work
from heaters.models import Role
from tests.browser.test_sign_in import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def accounts(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "rita", "rita-password", role=Role.REVIEWER)
        create_user(session, "ada", "ada-password", role=Role.ADMIN)


def _row(page: Page, username: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#users-table tr[data-username="{username}"]')


def test_an_admin_manages_accounts_from_the_page(
    page: Page, browser: Browser, web_url: str, accounts: None, engine: Engine
) -> None:
    sign_in(page, web_url, "ada", "ada-password")
    page.goto(f"{web_url}/admin")
    page.locator("#new-username").fill("nina")
    page.locator("#new-password").fill("nina-password")
    page.locator("#add-user").click()
    expect(page.locator("#admin-message")).to_have_text("Added reviewer 'nina'.")
    expect(_row(page, "nina")).to_contain_text("reviewer")

    nina = browser.new_context().new_page()
    sign_in(nina, web_url, "nina", "nina-password")
    expect(nina.locator("#current-user")).to_have_text("nina")
    assert nina.request.get(f"{web_url}/api/whoami").status == 200

    _row(page, "nina").get_by_role("button", name="Deactivate").click()
    expect(page.locator("#admin-message")).to_have_text("Deactivated 'nina'.")
    assert nina.request.get(f"{web_url}/api/whoami").status == 401  # her session ended at once

    _row(page, "ada").get_by_role("button", name="Deactivate").click()
    expect(page.locator("#admin-message")).to_contain_text("'ada' is the last active admin")
    expect(_row(page, "ada")).to_contain_text("yes")

    _row(page, "nina").get_by_role("button", name="Reactivate").click()
    expect(page.locator("#admin-message")).to_have_text("Reactivated 'nina'.")
    _row(page, "nina").get_by_placeholder("New password").fill("nina-new-password")
    _row(page, "nina").get_by_role("button", name="Set password").click()
    expect(page.locator("#admin-message")).to_have_text("Set a new password for 'nina'.")
    with unit_of_work() as session:
        assert authenticate(session, "nina", "nina-new-password") is not None
        assert authenticate(session, "nina", "nina-password") is None
    nina.context.close()


def test_a_reviewer_never_sees_the_accounts(page: Page, web_url: str, accounts: None) -> None:
    sign_in(page, web_url, "rita", "rita-password")
    expect(page.locator("#current-user")).to_have_text("rita")
    page.goto(f"{web_url}/admin")
    expect(page).not_to_have_url(re.compile(r"/admin/?$"))
    expect(page.locator("#users-table")).to_have_count(0)
