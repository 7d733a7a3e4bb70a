"""The only writer of `users`: create, authenticate, ensure an admin exists."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, select

from heaters.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from heaters.errors import HeatersError
from heaters.models import Role, User

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class UserError(HeatersError):
    """A user could not be created as asked."""


def find_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(func.lower(User.username) == username.lower())).first()


def create_user(session: Session, username: str, password: str, *, role: Role = Role.REVIEWER) -> User:
    if not USERNAME_PATTERN.match(username):
        raise UserError("Username must be 1-64 characters: letters, digits, '.', '_' or '-'.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if find_user(session, username) is not None:
        raise UserError(f"A user named {username!r} already exists.")
    user = User(username=username, password_hash=hash_password(password), role=role.value)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None; records the login time."""
    user = find_user(session, username.strip())
    if not verify_password(user.password_hash if user else None, password) or user is None or not user.is_active:
        return None
    user.last_login_at = datetime.now(UTC)
    session.add(user)
    return user


def active_user(session: Session, user_id: int) -> User | None:
    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None


def ensure_admin(session: Session, username: str = "admin") -> str | None:
    """Create the first admin when there are no users; return its generated password, else None."""
    if session.exec(select(func.count()).select_from(User)).one() > 0:
        return None
    password = secrets.token_urlsafe(12)
    create_user(session, username, password, role=Role.ADMIN)
    return password


def _existing(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise UserError(f"There is no user named {username!r}.")
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Deactivate (every session of theirs ends at its next request) or reactivate an account.

    The last active admin cannot be deactivated: nobody could manage accounts from the page any more.
    """
    user = _existing(session, username)
    if not active and user.is_active and user.role == Role.ADMIN.value:
        # Lock the active admins: two admins deactivating each other at once cannot both succeed.
        admins = session.exec(
            select(User.id).where(User.role == Role.ADMIN.value, User.is_active).with_for_update()
        ).all()
        if not set(admins) - {user.id}:
            raise UserError(f"{user.username!r} is the last active admin; make another admin first.")
    user.is_active = active
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> User:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    user = _existing(session, username)
    user.password_hash = hash_password(password)
    session.add(user)
    session.flush()
    return user
