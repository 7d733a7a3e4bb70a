"""Real servers: start each in a temp dir on free ports, use it, stop it (no process left), restart it
and find the data again. Also the LocalStack environment contract and the ProcessGroup's no-orphan rule."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psycopg
import pytest
import redis

from heaters.devstack.services import (
    Postgres,
    Redis,
    SeaweedS3,
    ServiceError,
    free_port,
    group_members,
    pid_alive,
    port_in_use,
)
from heaters.devstack.stack import LocalStack, ProcessGroup, read_stack_env
from heaters.errors import ConfigError, HeatersError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    """A temp dir PostgreSQL's system user can enter (pytest's own tmp_path sits under a 0700 dir)."""
    root = Path(tempfile.mkdtemp(prefix="heaters-devstack-test-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def assert_gone(pid: int) -> None:
    """The process and every member of its process group have exited."""
    deadline = time.monotonic() + 5
    while (pid_alive(pid) or group_members(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), f"process {pid} still runs"
    assert not group_members(pid), f"process group {pid} still has {group_members(pid)}"


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


# ---------------------------------------------------------------------------------------- LocalStack


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


# -------------------------------------------------------------------------------------- ProcessGroup

SUPERVISOR = textwrap.dedent(
    """
    import sys
    from heaters.devstack.services import free_port
    from heaters.devstack.stack import LocalStack, ProcessGroup

    timeout, marker, root = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    external = {
        "DATABASE_URL": "postgresql://db.example/x",
        "S3_ENDPOINT_URL": "https://s3.example",
        "S3_BUCKET": "b",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    stack = LocalStack(root, external=external, default_ports={"redis": free_port()}, persist=False)
    env = stack.start()  # only Redis runs: the cheapest real service
    group = ProcessGroup(stack, stop_timeout=timeout)
    group.start("sleeper", ["sleep", marker])
    shell = "echo $REDIS_URL; sleep " + marker + " & echo shell-ready; wait"
    group.start("shell", ["sh", "-c", shell], env=env)
    group.start("stubborn", ["sh", "-c", "trap '' TERM; echo stubborn-ready; sleep " + marker])
    sys.exit(group.run())
    """
)


def _drain(lines: queue.Queue[str]) -> list[str]:
    drained = []
    with contextlib.suppress(queue.Empty):
        while True:
            drained.append(lines.get_nowait())
    return drained


def _marked_processes(marker: str, parent: int) -> list[str]:
    """ps -ef lines of the supervisor's descendants (they carry ``marker``), the supervisor excluded."""
    # ww: without it ps cuts lines at 80 columns when its output is not a terminal
    ps = subprocess.run(["ps", "-efww"], capture_output=True, text=True, check=True).stdout
    return [
        line for line in ps.splitlines() if marker in line and "ps -efww" not in line and line.split()[1] != str(parent)
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_process_group_leaves_no_orphans_on_signal(signum: int, tmp_root: Path) -> None:
    marker = str(900000 + free_port())  # a unique sleep duration to find our processes in ps -ef
    parent = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, "1.0", marker, str(tmp_root / "data")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert parent.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump(stream: IO[str]) -> None:  # a thread: select() on a buffered pipe misses buffered lines
        for line in stream:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, args=(parent.stdout,))
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while not {"shell-ready", "stubborn-ready"} <= {line.split("| ")[-1] for line in seen}:
            assert time.monotonic() < deadline and parent.poll() is None, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        redis_pid = int((tmp_root / "data" / "redis" / "redis.pid").read_text())
        assert pid_alive(redis_pid)
        assert any(line.startswith("shell    | redis://127.0.0.1:") for line in seen)  # env + name prefix
        # 3 children + the sleep each shell forks (just after it printed "ready")
        while len(_marked_processes(marker, parent.pid)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_marked_processes(marker, parent.pid)) == 5

        parent.send_signal(signum)  # what Ctrl-C does to `make run`
        parent.wait(timeout=20)
    finally:
        if parent.poll() is None:  # a failed assertion above: let the supervisor clean up anyway
            parent.terminate()
            parent.wait(timeout=20)
        reader.join(timeout=5)
    output = "\n".join(seen + _drain(lines))
    assert parent.returncode == 0, output
    assert "did not stop in time" in output  # the TERM-ignoring child was SIGKILLed
    assert _marked_processes(marker, parent.pid) == []
    assert_gone(redis_pid)
    assert not (tmp_root / "data" / "stack.env").exists()


def test_process_group_stops_everything_when_a_child_dies() -> None:
    class FakeStack:
        stopped = False

        def stop(self) -> None:
            FakeStack.stopped = True

    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    group = ProcessGroup(FakeStack(), stop_timeout=5, out=Sink())  # type: ignore[arg-type]
    sleeper = group.start("sleeper", ["sleep", "300"])
    group.start("crasher", ["sh", "-c", "echo about to fail; sleep 0.3; exit 7"])
    assert group.run(poll_interval=0.05) == 7
    assert_gone(sleeper.pid)
    assert FakeStack.stopped
    assert any("crasher  | about to fail" in line for line in lines)


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
