"""A real `heaters web` (production mode) on a free port, against the test services, and Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from heaters.devstack.service import free_port
from heaters.supervisor import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def web_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the web process writes: stdout and stderr, one JSON object a line (LOG_FORMAT=json)."""
    return tmp_path_factory.mktemp("web") / "web.log"


@pytest.fixture(scope="session")
def web_url(migrated: str, app_env: dict[str, str], web_log: Path, browser: Any) -> Iterator[str]:
    port = free_port()
    log = web_log
    # As in production with several instances: Reflex's state in Redis (its own database, which the
    # worker tests' flushes never touch) and two server processes, so a tab's socket and the process
    # that hears an event are often not the same.
    reflex_redis = app_env["REDIS_URL"].rsplit("/", 1)[0] + "/1"
    env = {
        **os.environ,
        **app_env,
        "PORT": str(port),
        "REFLEX_REDIS_URL": reflex_redis,
        "GRANIAN_WORKERS": "2",
        "LOG_FORMAT": "json",  # as render.yaml sets it; tests/browser/test_web_logs.py reads the lines
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("heaters")), "web"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"heaters web exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and httpx.get(url, timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"heaters web did not answer within 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        _wait_until_pages_render(browser, url, deadline)
        yield url
    finally:
        stop_process_group(proc.pid, popen=proc)


def _wait_until_pages_render(browser: Any, url: str, deadline: float) -> None:
    """A page renders once its websocket has connected; on a cold, busy machine that can lag the HTTP
    server, so wait for one real page before the tests start timing anything."""
    from playwright.sync_api import TimeoutError as PageTimeout

    context = browser.new_context()
    try:
        page = context.new_page()
        while True:
            page.goto(f"{url}/login")
            try:
                page.get_by_label("Username").wait_for(timeout=15_000)
                return
            except PageTimeout:  # not rendered yet: load the page again until the deadline
                if time.monotonic() > deadline:
                    pytest.fail("the login page did not render within 180 s of starting heaters web")
    finally:
        context.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a busy two-core machine runs encodes beside these tests
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
