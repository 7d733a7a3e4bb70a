"""Sign-in in a real browser: refused, accepted, remembered, required, and admin-only pages."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role

pytestmark = pytest.mark.browser  # `make test` runs these in one process, after the rest


@pytest.fixture
def users(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "rita", "rita-password", role=Role.REVIEWER)
        create_user(session, "ada", "ada-password", role=Role.ADMIN)


def sign_in(page: Page, web_url: str, username: str, password: str) -> None:
    page.goto(f"{web_url}/login")
    page.get_by_label("Username").fill(username, timeout=90_000)  # a first page load on a busy machine is slow
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_signed_out_visit_is_sent_to_login(page: Page, web_url: str, users: None) -> None:
    page.goto(f"{web_url}/admin")
    expect(page).to_have_url(re.compile(r"/login/?\?next=%2Fadmin"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)


def test_wrong_password_is_refused(page: Page, web_url: str, users: None) -> None:
    sign_in(page, web_url, "rita", "not-her-password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    expect(page).to_have_url(re.compile(r"/login"))
    assert not [c for c in page.context.cookies() if c["name"] == "heaters_session"]


def test_right_password_lands_on_home_and_survives_reload(page: Page, web_url: str, users: None) -> None:
    sign_in(page, web_url, "rita", "rita-password")
    expect(page.locator("#current-user")).to_have_text("rita")
    expect(page).to_have_url(re.compile(rf"{re.escape(web_url)}/?$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "heaters_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.reload()
    expect(page.locator("#current-user")).to_have_text("rita")


def test_sign_in_returns_to_the_requested_page(page: Page, web_url: str, users: None) -> None:
    page.goto(f"{web_url}/admin")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("ada-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/admin/?$"))
    expect(page.locator("#users-table")).to_contain_text("rita")


def test_admin_pages_refuse_reviewers(page: Page, web_url: str, users: None) -> None:
    sign_in(page, web_url, "rita", "rita-password")
    expect(page.locator("#current-user")).to_have_text("rita")
    page.goto(f"{web_url}/admin")
    expect(page.get_by_text("That page is for admins only.")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"{re.escape(web_url)}/?$"))
    expect(page.locator("#users-table")).to_have_count(0)


def test_sign_out_ends_the_session(page: Page, web_url: str, users: None) -> None:
    sign_in(page, web_url, "rita", "rita-password")
    expect(page.locator("#current-user")).to_have_text("rita")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(web_url)
    expect(page).to_have_url(re.compile(r"/login"))


def test_api_routes_need_a_session_but_health_does_not(web_url: str, users: None) -> None:
    assert httpx.get(f"{web_url}/api/whoami").status_code == 401
    assert httpx.get(f"{web_url}/healthz").json() == {"status": "ok"}
    client = httpx.Client(base_url=web_url)
    response = client.post("/api/login", data={"username": "ada", "password": "ada-password", "next": "/"})
    assert response.status_code == 303
    assert client.get("/api/whoami").json() == {"id": 2, "username": "ada", "role": "admin"}
    client.cookies.set("heaters_session", client.cookies["heaters_session"][:-3] + "xyz")
    assert client.get("/api/whoami").status_code == 401
