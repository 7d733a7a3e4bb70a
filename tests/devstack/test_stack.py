"""LocalStack, what `make run` starts: the environment contract, external services, remembered ports and
secrets."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import psycopg
import pytest

from heaters.devstack.service import free_port
from heaters.devstack.stack import LocalStack, read_stack_env
from heaters.errors import ConfigError
from tests.fixtures.processes import assert_gone


def test_local_stack_honours_external_redis_and_remembers_ports_and_secrets(tmp_root: Path) -> None:
    root = tmp_root / "data"
    with socket.socket() as holder:  # the postgres default is taken: a free port replaces it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        external = {"REDIS_URL": "redis://redis.example:6379/2"}
        defaults = {"postgres": taken, "s3": free_port()}
        stack = LocalStack(root, external=external, default_ports=defaults, persist=False)
        env = stack.start()
    try:
        assert env["REDIS_URL"] == "redis://redis.example:6379/2"
        assert [s.name for s in stack.services] == ["postgres", "s3"]
        assert not (root / "redis").exists()
        ports = json.loads((root / "ports.json").read_text())
        assert set(ports) == {"postgres", "s3"} and ports["postgres"] != taken
        assert env["DATABASE_URL"] == f"postgresql://postgres@127.0.0.1:{ports['postgres']}/heaters"
        assert env["S3_ENDPOINT_URL"] == f"http://127.0.0.1:{ports['s3']}"
        assert env["S3_BUCKET"] == "heaters" and env["AWS_REGION"] == "us-east-1"
        assert len(env["SECRET_KEY"]) >= 32
        assert read_stack_env(root) == env
        for private in ("secrets.json", "stack.env"):
            assert stat.S_IMODE((root / private).stat().st_mode) == 0o600
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        pids = [pid for s in stack.services if (pid := s.pid()) is not None]
        assert len(pids) == 2
    finally:
        stack.stop()
    for pid in pids:
        assert_gone(pid)
    assert not (root / "stack.env").exists()

    again = LocalStack(root, external=external, persist=False)  # a new process: same ports, same keys
    try:
        assert again.start() == env
    finally:
        again.stop()


def test_local_stack_with_every_service_external_starts_nothing(tmp_root: Path) -> None:
    partial = {
        "S3_ENDPOINT_URL": "https://s3.example",
        "DATABASE_URL": "postgresql://db/x",
        "REDIS_URL": "redis://r",
    }
    with pytest.raises(ConfigError, match="S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"):
        LocalStack(tmp_root / "a", external=partial).start()

    given = {
        **partial,
        "S3_BUCKET": "b",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "SECRET_KEY": "x" * 40,
    }
    stack = LocalStack(tmp_root / "b", external=given)
    env = stack.start()
    assert stack.services == []
    assert {k: env[k] for k in given} == given
    stack.stop()
