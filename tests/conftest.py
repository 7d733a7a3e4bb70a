"""Shared fixtures: real services (tests/fixtures/services.py), settings pointed at them, a migrated DB."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.workers"]


def _clear_caches() -> None:
    from heaters import adapters
    from heaters.settings import get_settings

    get_settings.cache_clear()
    adapters.get_storage.cache_clear()
    adapters.get_media_urls.cache_clear()
    adapters.get_redis.cache_clear()
    adapters.get_playback_cache.cache_clear()


@pytest.fixture(scope="session")
def app_env(service_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Point the settings at the test services for the whole session (never at `make run`'s data)."""
    saved = {key: os.environ.get(key) for key in service_env}
    os.environ.update(service_env)
    _clear_caches()
    yield service_env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _clear_caches()


@pytest.fixture(scope="session")
def migrated(app_env: dict[str, str]) -> str:
    from heaters import migrations
    from heaters.settings import get_settings

    url = get_settings().sqlalchemy_url
    migrations.upgrade(url)
    return url


@pytest.fixture
def engine(migrated: str) -> Iterator[Engine]:
    """The app's engine on a migrated database, emptied after each test."""
    from heaters.db import get_engine

    engine = get_engine()
    yield engine
    with engine.begin() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
        ).scalars()
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
