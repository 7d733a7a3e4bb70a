"""The session cookie over HTTP: who is asking, and where to send them after signing in."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from sqlmodel import Session

from heaters.auth.service import active_user
from heaters.auth.tokens import COOKIE_NAME, read_token


@dataclass(frozen=True)
class SessionUser:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def cookie_value(cookie_header: str | None, name: str = COOKIE_NAME) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header or "")
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def session_user(session: Session, token: str | None, secret: str, max_age_seconds: int) -> SessionUser | None:
    """The signed-in, still active user behind a session token, or None."""
    claims = read_token(token, secret, max_age_seconds)
    if claims is None:
        return None
    user = active_user(session, claims.user_id)
    if user is None or user.id is None:
        return None
    return SessionUser(user.id, user.username, user.role)


def safe_next(path: str | None) -> str:
    """Only local absolute paths are followed after sign-in: no open redirects."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or path.startswith("/login"):
        return "/"
    return path
