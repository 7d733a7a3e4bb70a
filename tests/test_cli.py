"""The `heaters` command line against the real services: users, doctor, clear errors."""

from __future__ import annotations

import os

from sqlalchemy import Engine

from heaters.auth.service import authenticate
from heaters.db import unit_of_work
from tests.fixtures.workers import run_cli


def _env(app_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**os.environ, **app_env, **extra}


def test_users_create_reads_the_password_from_stdin(engine: Engine, app_env: dict[str, str]) -> None:
    result = run_cli(
        _env(app_env), "users", "create", "maria", "--admin", "--password-stdin", input_text="a-long-password\n"
    )
    assert result.returncode == 0, result.stderr
    assert "Created admin 'maria'" in result.stdout
    with unit_of_work() as session:
        user = authenticate(session, "maria", "a-long-password")
        assert user is not None and user.role == "admin"
    again = run_cli(_env(app_env), "users", "create", "maria", "--password-stdin", input_text="another-password\n")
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_doctor_prints_every_check(engine: Engine, app_env: dict[str, str]) -> None:
    result = run_cli(_env(app_env, COLUMNS="200"), "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("database", "redis", "s3", "ffmpeg"):
        assert name in result.stdout
    assert "FAIL" not in result.stdout


def test_bad_configuration_is_one_clear_sentence(app_env: dict[str, str]) -> None:
    result = run_cli(_env(app_env, DATABASE_URL="mysql://nope/x"), "videos", "list")
    assert result.returncode == 1
    assert "DATABASE_URL: must be a postgresql:// URL" in result.stderr and "Traceback" not in result.stderr
    unreachable = run_cli(_env(app_env, DATABASE_URL="postgresql://u@127.0.0.1:1/x"), "videos", "list")
    assert unreachable.returncode == 1
    assert "cannot reach the database" in unreachable.stderr and "Traceback" not in unreachable.stderr


def test_ingest_refuses_what_is_neither_file_nor_url(engine: Engine, app_env: dict[str, str]) -> None:
    result = run_cli(_env(app_env), "ingest", "/no/such/file.mp4")
    assert result.returncode == 1
    assert "neither an existing file nor an http(s) URL" in result.stderr


def test_doctor_exits_nonzero_when_a_dependency_is_down(engine: Engine, app_env: dict[str, str]) -> None:
    from heaters.devstack.service import free_port

    result = run_cli(_env(app_env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", COLUMNS="200"), "doctor")
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "redis" in result.stdout
