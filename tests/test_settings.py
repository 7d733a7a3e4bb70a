"""Settings validation: every message names the environment variable to fix."""

from __future__ import annotations

import pytest

from heaters.errors import ConfigError
from heaters.settings import Settings, load_settings

GOOD = {
    "DATABASE_URL": "postgresql://u@127.0.0.1:5432/heaters",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "S3_BUCKET": "media",
    "SECRET_KEY": "s" * 40,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    """A clean environment: no variables and no .env files from the developer's machine."""
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        for field in Settings.model_fields.values():
            alias = field.validation_alias
            if alias is not None and name in getattr(alias, "choices", []):
                monkeypatch.delenv(name)
    for key, value in GOOD.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_valid_environment_loads(env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@127.0.0.1:5432/heaters"
    assert settings.port == 3000 and settings.app_env == "development"


def test_missing_variables_are_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("DATABASE_URL")
    env.delenv("SECRET_KEY")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "DATABASE_URL is not set" in str(raised.value)
    assert "SECRET_KEY is not set" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: must be a postgresql:// URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL: must be a redis:// or rediss:// URL"),
        ("S3_ENDPOINT_URL", "127.0.0.1:8333", "S3_ENDPOINT_URL: must be an http:// or https:// URL"),
        ("SECRET_KEY", "short", "SECRET_KEY: must be at least 32 characters"),
        ("PORT", "99999", "PORT: input should be less than or equal to 65535"),
        ("APP_ENV", "staging", "APP_ENV: input should be 'development', 'test' or 'production'"),
    ],
)
def test_bad_values_are_named(env: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError, match="Invalid configuration") as raised:
        load_settings()
    assert expected in str(raised.value)


def test_seed_guide_names_are_accepted(env: pytest.MonkeyPatch) -> None:
    """The deployment guide's variable names map onto ours (see the README's table)."""
    env.delenv("S3_BUCKET")
    env.delenv("SECRET_KEY")
    env.setenv("PROD_S3_BUCKET_NAME", "prod-media")
    env.setenv("SECRET_KEY_BASE", "k" * 64)
    env.setenv("PROD_CLOUDFRONT_DOMAIN", "d123.cloudfront.net")
    env.setenv("OBAN_QUEUES", "default")
    env.setenv("PHX_HOST", "heaters.example.com")
    env.setenv("DATABASE_URL", "postgres://u:p@db.internal/heaters")
    settings = load_settings()
    assert settings.s3_bucket == "prod-media"
    assert settings.cloudfront_domain == "d123.cloudfront.net"
    assert settings.worker_queues == "default"
    assert settings.public_host == "heaters.example.com"
    assert settings.database_url == "postgresql://u:p@db.internal/heaters"


def test_cloudfront_signing_needs_all_three(env: pytest.MonkeyPatch) -> None:
    env.setenv("CLOUDFRONT_KEY_PAIR_ID", "K123")
    with pytest.raises(ConfigError, match="CLOUDFRONT_DOMAIN, CLOUDFRONT_KEY_PAIR_ID and CLOUDFRONT_PRIVATE_KEY"):
        load_settings()


def test_database_urls_are_normalised_for_psycopg() -> None:
    from heaters.settings import sqlalchemy_database_url

    assert sqlalchemy_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="must be a postgresql:// URL"):
        sqlalchemy_database_url("mysql://u@h/db")
