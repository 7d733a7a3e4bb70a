"""/admin/jobs in a real browser: real dead letters requeued and deleted from the page; admins only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine

from heaters import dead_letters
from heaters.auth.service import create_user
from heaters.db import unit_of_work
from heaters.models import Role
from heaters.queues import Queue
from tests.browser.test_sign_in import sign_in
from tests.test_dead_letters import CLEANUP, EXPORT, kill

pytestmark = pytest.mark.browser

QUEUES = ("exports", "maintenance")


def _clear(redis: Any) -> None:
    """Only these queues' keys: the web process's own entries in this Redis stay."""
    keys = [k for name in QUEUES for k in redis.keys(f"dramatiq:{name}*")]
    keys += [k for k in redis.keys("dramatiq:__acks__.*") if k.decode().rsplit(".", 1)[-1] in QUEUES]
    if keys:
        redis.delete(*keys)


@pytest.fixture
def dead(engine: Engine, broker: Any) -> Iterator[dict[str, str]]:
    """Users, and real dead letters: two on exports, two on maintenance."""
    redis = broker.client
    _clear(redis)
    with unit_of_work() as session:
        create_user(session, "rita", "rita-password", role=Role.REVIEWER)
        create_user(session, "ada", "ada-password", role=Role.ADMIN)
    letters = {
        "requeued": kill(broker, "exports", EXPORT, 201),
        "deleted": kill(broker, "exports", EXPORT, 202),
        "cleanup1": kill(broker, "maintenance", CLEANUP),
        "cleanup2": kill(broker, "maintenance", CLEANUP),
    }
    yield letters
    _clear(redis)


def _cell(row: Any, column: int) -> Any:
    return row.locator("td").nth(column)  # queue, ready, delayed, dead, paused, buttons


def test_an_admin_requeues_and_deletes_dead_letters_from_the_page(
    page: Page, web_url: str, broker: Any, dead: dict[str, str]
) -> None:
    redis = broker.client
    sign_in(page, web_url, "ada", "ada-password")
    expect(page.locator("#current-user")).to_have_text("ada")
    page.goto(f"{web_url}/admin/jobs")

    table = page.locator('[data-testid="jobs-dead"]')
    requeued = table.locator("tr", has_text=dead["requeued"])
    deleted = table.locator("tr", has_text=dead["deleted"])
    expect(requeued).to_contain_text(EXPORT)
    expect(requeued).to_contain_text("[201]")
    expect(deleted).to_contain_text("[202]")
    expect(table.locator("tr", has_text=dead["cleanup1"])).to_contain_text(CLEANUP)
    exports = page.locator('[data-testid="jobs-queues"] tr', has_text="exports")
    maintenance = page.locator('[data-testid="jobs-queues"] tr', has_text="maintenance")
    expect(_cell(exports, 1)).to_have_text("0")
    expect(_cell(exports, 3)).to_have_text("2")

    requeued.get_by_role("button", name="Requeue").click()
    expect(page.locator("#jobs-message")).to_have_text("1 dead-lettered message(s) of exports queued again.")
    expect(requeued).to_have_count(0)
    expect(_cell(exports, 1)).to_have_text("1")
    expect(_cell(exports, 3)).to_have_text("1")
    assert redis.zscore("dramatiq:exports.XQ", dead["requeued"]) is None
    assert redis.llen("dramatiq:exports") == 1 and redis.hlen("dramatiq:exports.msgs") == 1

    deleted.get_by_role("button", name="Delete").click()
    expect(page.locator("#jobs-message")).to_have_text("1 dead-lettered message(s) of exports deleted.")
    expect(deleted).to_have_count(0)
    expect(_cell(exports, 3)).to_have_text("0")
    expect(exports.get_by_role("button", name="Requeue dead")).to_have_count(0)  # nothing dead left there
    assert not redis.hexists("dramatiq:exports.XQ.msgs", dead["deleted"])
    assert redis.zscore("dramatiq:exports.XQ", dead["deleted"]) is None
    assert redis.hlen("dramatiq:exports.msgs") == 1  # deleted, not requeued
    assert len(dead_letters.listing(redis, Queue.MAINTENANCE)) == 2

    expect(_cell(maintenance, 3)).to_have_text("2")
    maintenance.get_by_role("button", name="Requeue dead").click()
    expect(page.locator("#jobs-message")).to_have_text("2 dead-lettered message(s) of maintenance queued again.")
    expect(_cell(maintenance, 1)).to_have_text("2")
    expect(_cell(maintenance, 3)).to_have_text("0")
    expect(table.locator("tr", has_text=dead["cleanup1"])).to_have_count(0)
    expect(table.locator("tr", has_text=dead["cleanup2"])).to_have_count(0)
    assert dead_letters.listing(redis, Queue.MAINTENANCE) == []
    assert redis.hlen("dramatiq:maintenance.msgs") == 2


def test_a_reviewer_is_sent_away_and_the_dead_letters_stay(
    page: Page, web_url: str, broker: Any, dead: dict[str, str]
) -> None:
    sign_in(page, web_url, "rita", "rita-password")
    expect(page.locator("#current-user")).to_have_text("rita")
    page.goto(f"{web_url}/admin/jobs")
    expect(page).not_to_have_url(re.compile(r"/admin/jobs"))
    expect(page.locator('[data-testid="jobs-dead"]')).to_have_count(0)
    assert len(dead_letters.listing(broker.client, Queue.EXPORTS)) == 2
