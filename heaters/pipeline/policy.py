"""Retry policy: pure functions, so the numbers are tested without a database."""

from __future__ import annotations

BASE_BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0


def backoff_seconds(attempt: int, *, base: float = BASE_BACKOFF_SECONDS, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Exponential: base, 2*base, 4*base ... after attempts 1, 2, 3 ..., never more than cap."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    return float(min(cap, base * 2 ** (attempt - 1)))


def exhausted(attempts: int, max_attempts: int) -> bool:
    return attempts >= max_attempts
