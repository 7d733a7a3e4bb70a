"""Users on the real database: creation rules, authentication, the first admin."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from heaters.auth.service import UserError, active_user, authenticate, create_user, ensure_admin
from heaters.db import unit_of_work
from heaters.models import Role, User


def test_passwords_are_stored_as_argon2id(engine: Engine) -> None:
    with unit_of_work() as session:
        user = create_user(session, "ana", "correct horse", role=Role.ADMIN)
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash


def test_authenticate_checks_the_password_and_ignores_username_case(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "Ana", "correct horse")
    with unit_of_work() as session:
        assert authenticate(session, "ana", "wrong password") is None
        assert authenticate(session, "nobody", "correct horse") is None
        user = authenticate(session, "ANA", "correct horse")
        assert user is not None and user.last_login_at is not None and user.role == "reviewer"


def test_inactive_users_cannot_sign_in(engine: Engine) -> None:
    with unit_of_work() as session:
        user = create_user(session, "gone", "password123")
        user.is_active = False
        session.add(user)
    with unit_of_work() as session:
        assert authenticate(session, "gone", "password123") is None
        assert user.id is not None and active_user(session, user.id) is None


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("bad name", "password123", "Username must be"),
        ("", "password123", "Username must be"),
        ("ok", "short", "at least 8 characters"),
    ],
)
def test_bad_users_are_refused_with_a_reason(engine: Engine, name: str, password: str, message: str) -> None:
    with pytest.raises(UserError, match=message), unit_of_work() as session:
        create_user(session, name, password)


def test_duplicate_usernames_are_refused_and_the_first_user_kept(engine: Engine) -> None:
    with unit_of_work() as session:
        create_user(session, "ana", "password123")
    with pytest.raises(UserError, match="already exists"), unit_of_work() as session:
        create_user(session, "ANA", "other-password")
    with unit_of_work() as session:
        assert authenticate(session, "ana", "password123") is not None


def test_ensure_admin_creates_one_admin_only_on_an_empty_table(engine: Engine) -> None:
    with unit_of_work() as session:
        password = ensure_admin(session)
    assert password is not None and len(password) >= 12
    with unit_of_work() as session:
        assert ensure_admin(session) is None
        admin = authenticate(session, "admin", password)
        assert admin is not None and admin.role == "admin"
        assert session.query(User).count() == 1
