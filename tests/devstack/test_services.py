"""Real servers: start each in a temp dir on free ports, use it, stop it (no process left), restart it
and find the data again. Also the session fixtures the rest of the suite runs on."""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
import redis

from heaters.devstack.postgres import Postgres
from heaters.devstack.redis import Redis
from heaters.devstack.seaweed import SeaweedS3
from heaters.devstack.service import ServiceError, free_port
from heaters.errors import HeatersError
from heaters.ports import port_in_use
from tests.fixtures.processes import assert_gone


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, read from /proc (no ss needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:
                address_hex, port_hex = local.split(":")
                address = "ipv6" if v6 else socket.inet_ntoa(bytes.fromhex(address_hex)[::-1])
                found.add((address, int(port_hex, 16)))
    return found


# ------------------------------------------------------------------------------------------ services


def test_postgres_serves_pgvector_stops_cleanly_and_keeps_data(tmp_root: Path) -> None:
    pg = Postgres(tmp_root / "pg", free_port(), durable=False)
    pg.start()
    pid = pg.pid()
    assert pid is not None
    assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/heaters"
    with psycopg.connect(pg.url) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert version is not None and version[0]
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'").fetchone()
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, embedding vector(3))")
        conn.execute("INSERT INTO kept VALUES (1, '[1,2,3]')")
    assert (pg.data_dir / f".s.PGSQL.{pg.port}").exists()  # the unix socket lives in the data dir
    assert listening(pid) == {("127.0.0.1", pg.port)}
    other = pg.create_database("other_db")
    with psycopg.connect(other) as conn:
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    with pytest.raises(ServiceError, match="already has a database"):
        pg.create_database("other_db")

    pg.start()  # idempotent: the running server is reused
    assert pg.pid() == pid

    pg.stop()
    assert_gone(pid)
    assert pg.pid() is None
    assert not port_in_use("127.0.0.1", pg.port)

    again = Postgres(tmp_root / "pg", pg.port, durable=False)  # a fresh handle, as after a reboot
    again.start()
    try:
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT embedding::text FROM kept WHERE id = 1").fetchone() == ("[1,2,3]",)
    finally:
        restarted = again.pid()
        again.stop()
    assert restarted is not None
    assert_gone(restarted)


def test_redis_answers_and_persists_when_asked(tmp_root: Path) -> None:
    server = Redis(tmp_root / "redis", free_port(), persist=True)
    server.start()
    pid = server.pid()
    assert pid is not None
    assert listening(pid) == {("127.0.0.1", server.port)}
    client = redis.Redis.from_url(server.url)
    assert client.ping()
    client.set("job", "queued")
    assert client.get("job") == b"queued"
    client.close()
    server.stop()
    assert_gone(pid)

    server.start()
    client = redis.Redis.from_url(server.url)
    assert client.get("job") == b"queued"  # the append-only file survived the restart
    client.close()
    restarted = server.pid()
    server.stop()
    assert restarted is not None
    assert_gone(restarted)


def test_seaweed_s3_checks_signatures_binds_localhost_and_persists(tmp_root: Path) -> None:
    s3 = SeaweedS3(tmp_root / "s3", free_port(), access_key="AKTESTKEY", secret_key="s" * 40, bucket="heaters")
    s3.start()
    pid = s3.pid()
    assert pid is not None
    try:
        client = s3.client()
        client.put_object(Bucket="heaters", Key="clips/a.txt", Body=b"hello")
        assert client.get_object(Bucket="heaters", Key="clips/a.txt")["Body"].read() == b"hello"

        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": "heaters", "Key": "clips/a.txt"}, ExpiresIn=60
        )
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"hello"
        signature = url.split("X-Amz-Signature=")[1].split("&")[0]
        tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(tampered, timeout=10)
        assert denied.value.code == 403

        # Every port weed opens is pinned and on 127.0.0.1 (the admin server comes up last).
        expected = {s3.port, *s3.aux_ports.values()}
        deadline = time.monotonic() + 10
        while {port for _, port in listening(pid)} != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        sockets = listening(pid)
        assert {address for address, _ in sockets} == {"127.0.0.1"}
        assert {port for _, port in sockets} == expected
        assert len(expected) == 10
    finally:
        s3.stop()
    assert_gone(pid)
    assert not list(Path("/tmp").glob(f"seaweedfs-*-{s3.port}.sock"))

    s3.start()  # same dir: the remembered internal ports and the data come back
    try:
        assert s3.client().get_object(Bucket="heaters", Key="clips/a.txt")["Body"].read() == b"hello"
    finally:
        restarted = s3.pid()
        s3.stop()
    assert restarted is not None
    assert_gone(restarted)


def test_failed_start_names_the_service_and_shows_its_log(tmp_root: Path) -> None:
    fake = tmp_root / "redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: cannot open config' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(ServiceError) as failed:
        Redis(tmp_root / "r1", free_port(), binary=str(fake)).start()
    message = str(failed.value)
    assert message.startswith("Redis exited with code 3")
    assert "FATAL: cannot open config" in message
    assert isinstance(failed.value, HeatersError)

    with pytest.raises(ServiceError, match="binary is missing"):
        Redis(tmp_root / "r2", free_port(), binary=str(tmp_root / "nope")).start()

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(ServiceError, match=f"Redis cannot start because port {taken}"):
            Redis(tmp_root / "r3", taken).start()


# ------------------------------------------------------------------------------------ pytest plugin


def test_session_fixtures_give_a_working_environment(service_env: dict[str, str], s3_server: SeaweedS3) -> None:
    assert service_env["APP_ENV"] == "test"
    assert len(service_env["SECRET_KEY"]) == 48
    assert "/.data" not in json.dumps(service_env)
    assert str(s3_server.data_dir).startswith(tempfile.gettempdir())
    with psycopg.connect(service_env["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0].startswith("heaters_test_")  # type: ignore[index]
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'").fetchone()
    client = redis.Redis.from_url(service_env["REDIS_URL"])
    assert client.ping()
    client.close()
    s3 = s3_server.client()
    s3.head_bucket(Bucket=service_env["S3_BUCKET"])
    assert service_env["S3_BUCKET"] == "heaters-test"
    assert service_env["AWS_ACCESS_KEY_ID"] == s3_server.access_key
