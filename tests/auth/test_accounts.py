"""Managing accounts (the admin page and `heaters users` share this service): deactivate, reactivate,
new passwords, and never the last active admin."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from heaters import api
from heaters.auth.service import UserError, authenticate, create_user, set_active, set_password
from heaters.db import unit_of_work
from heaters.models import Role
from tests.fixtures.workers import run_cli


@pytest.fixture
def team(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "ada", "ada-password-1", role=Role.ADMIN)
        create_user(session, "rita", "rita-password-1")


def test_a_deactivated_user_is_signed_out_at_the_next_request_and_can_come_back(team: None) -> None:
    with TestClient(api.create_api()) as rita:
        rita.post("/api/login", data={"username": "rita", "password": "rita-password-1"})
        assert rita.get("/api/whoami").json()["username"] == "rita"
        with unit_of_work() as session:
            set_active(session, "rita", False)
        assert rita.get("/api/whoami").status_code == 401  # the same cookie, refused at once
        with unit_of_work() as session:
            assert authenticate(session, "rita", "rita-password-1") is None
            set_active(session, "RITA", True)  # usernames are case-insensitive everywhere
        assert rita.get("/api/whoami").status_code == 200


def test_the_last_active_admin_cannot_be_deactivated(team: None) -> None:
    with pytest.raises(UserError, match="'ada' is the last active admin"), unit_of_work() as session:
        set_active(session, "ada", False)
    with unit_of_work() as session:
        create_user(session, "grace", "grace-password-1", role=Role.ADMIN)
        set_active(session, "ada", False)  # another admin exists now
    with pytest.raises(UserError, match="'grace' is the last active admin"), unit_of_work() as session:
        set_active(session, "grace", False)
    with unit_of_work() as session:
        assert authenticate(session, "grace", "grace-password-1") is not None


def test_a_new_password_replaces_the_old_one_and_bad_input_changes_nothing(team: None) -> None:
    with unit_of_work() as session:
        set_password(session, "rita", "a-brand-new-password")
    with pytest.raises(UserError, match="at least 8 characters"), unit_of_work() as session:
        set_password(session, "rita", "short")
    with pytest.raises(UserError, match="There is no user named 'nobody'"), unit_of_work() as session:
        set_password(session, "nobody", "a-long-enough-password")
    with unit_of_work() as session:
        assert authenticate(session, "rita", "rita-password-1") is None
        assert authenticate(session, "rita", "a-brand-new-password") is not None


def test_the_cli_uses_the_same_rules(team: None, app_env: dict[str, str]) -> None:
    env = {**os.environ, **app_env}
    refused = run_cli(env, "users", "deactivate", "ada")
    assert refused.returncode == 1 and "last active admin" in refused.stderr and "Traceback" not in refused.stderr
    assert run_cli(env, "users", "deactivate", "rita").returncode == 0
    changed = run_cli(env, "users", "password", "rita", "--password-stdin", input_text="cli-new-password\n")
    assert changed.returncode == 0, changed.stderr
    assert run_cli(env, "users", "activate", "rita").returncode == 0
    with unit_of_work() as session:
        assert authenticate(session, "rita", "cli-new-password") is not None
