"""Session tokens: signed, expiring, bound to the secret."""

from __future__ import annotations

import time

from heaters.auth.tokens import issue_token, read_token

SECRET = "a" * 40


def test_a_fresh_token_names_its_user() -> None:
    claims = read_token(issue_token(7, SECRET), SECRET, max_age_seconds=60)
    assert claims is not None and claims.user_id == 7


def test_tampered_or_foreign_tokens_are_refused() -> None:
    token = issue_token(7, SECRET)
    assert read_token(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), SECRET, 60) is None
    assert read_token(token, "b" * 40, 60) is None
    assert read_token("", SECRET, 60) is None
    assert read_token("garbage", SECRET, 60) is None


def test_tokens_expire() -> None:
    token = issue_token(7, SECRET)
    time.sleep(2.1)  # itsdangerous counts whole seconds
    assert read_token(token, SECRET, max_age_seconds=1) is None
    assert read_token(token, SECRET, max_age_seconds=60) is not None
