"""Signed, expiring session tokens carried in the `heaters_session` cookie.

The token names a user and when it was issued; the signature (the app's SECRET_KEY) makes it
unforgeable and the max age makes it expire. Each request re-reads the user, so deactivating a user
or changing their role takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

COOKIE_NAME = "heaters_session"
_SALT = "heaters.session.v1"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def issue_token(user_id: int, secret: str) -> str:
    return _serializer(secret).dumps({"uid": user_id})


def read_token(token: str | None, secret: str, max_age_seconds: int) -> TokenClaims | None:
    """The claims of a valid, unexpired token; None for anything else."""
    if not token:
        return None
    try:
        data = _serializer(secret).loads(token, max_age=max_age_seconds)
    except (SignatureExpired, BadSignature):
        return None
    uid = data.get("uid") if isinstance(data, dict) else None
    return TokenClaims(uid) if isinstance(uid, int) else None
