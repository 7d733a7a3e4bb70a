"""The local development stack (`make run`) and the tiny supervisor that runs the app processes on it.

Why: local development must only swap endpoints (DESIGN.md §9). ``LocalStack`` starts PostgreSQL, Redis
and S3 under one root (``.data/``) on stable ports, keeps generated secrets there, and hands child
processes the same environment variables production uses. Any of DATABASE_URL / REDIS_URL /
S3_ENDPOINT_URL given from outside wins, and that service is not started. ``ProcessGroup`` runs the
web app and workers next to it and makes sure Ctrl-C leaves no process behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, Self

from heaters.devstack.services import (
    PG_COPY_ROOT,
    ManagedService,
    Postgres,
    Redis,
    SeaweedS3,
    ServiceError,
    _blocking_dir,
    _write_private,
    ensure_system_user,
    free_port,
    group_members,
    port_in_use,
)
from heaters.errors import ConfigError
from heaters.media.tools import DIE_WITH_PARENT

DEFAULT_PORTS: dict[str, int] = {"postgres": 54329, "redis": 63799, "s3": 8333}
BUCKET = "heaters"
REGION = "us-east-1"
STACK_ENV = "stack.env"

# env name that, when given from outside, replaces each service
_EXTERNAL = {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "s3": "S3_ENDPOINT_URL"}


def _mkdirs(path: Path) -> None:
    """Create ``path`` and missing parents traversable (0755) whatever the umask: PostgreSQL runs as
    another user and must enter them. Existing directories are left alone."""
    for directory in [*reversed(path.parents), path]:
        if not directory.exists():
            directory.mkdir(exist_ok=True)
            os.chmod(directory, 0o755)


def read_stack_env(root: Path | str = ".data") -> dict[str, str]:
    """The environment a running stack published in ``<root>/stack.env`` ({} when none runs)."""
    try:
        text = (Path(root) / STACK_ENV).read_text()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value for key, value in pairs}


class LocalStack:
    """PostgreSQL + Redis + S3 under ``root`` for development, with stable ports and persisted secrets.

    Files in ``root``: ``ports.json`` (chosen ports; a default that is taken by something else is
    replaced by a free port and remembered), ``secrets.json`` (S3 keys and SECRET_KEY, generated once,
    mode 0600), ``stack.env`` (KEY=VALUE for other shells, present while the stack runs), and one data
    directory per service.
    """

    def __init__(
        self,
        root: Path | str = ".data",
        *,
        external: Mapping[str, str] | None = None,
        default_ports: Mapping[str, int] | None = None,
        persist: bool = True,
        pg_user: str = "heaters_pg",
    ) -> None:
        self.root = Path(root).absolute()
        self.external = {k: v for k, v in (external or {}).items() if v}
        self.default_ports = {**DEFAULT_PORTS, **(default_ports or {})}
        self.persist = persist
        self.pg_user = pg_user
        self.services: list[ManagedService] = []
        self.env: dict[str, str] = {}

    # --- files
    @property
    def ports_path(self) -> Path:
        return self.root / "ports.json"

    @property
    def secrets_path(self) -> Path:
        return self.root / "secrets.json"

    @property
    def env_path(self) -> Path:
        return self.root / STACK_ENV

    def _load_json(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise ServiceError(f"The local stack cannot read {path}: {error}.") from None
        return data if isinstance(data, dict) else {}

    def _secrets(self) -> dict[str, str]:
        """Generated on first start, then reused so S3 objects and sessions stay valid."""
        stored = self._load_json(self.secrets_path)
        wanted = {
            "s3_access_key": lambda: "HEATERS" + secrets.token_hex(7).upper(),
            "s3_secret_key": lambda: secrets.token_hex(20),
            "secret_key": lambda: secrets.token_urlsafe(48),
        }
        changed = False
        for key, make in wanted.items():
            if not isinstance(stored.get(key), str) or not stored[key]:
                stored[key] = make()
                changed = True
        if changed:
            _write_private(self.secrets_path, json.dumps(stored, indent=2) + "\n")
        return {k: str(v) for k, v in stored.items()}

    # --- services
    def _managed(self) -> list[str]:
        return [name for name in ("postgres", "redis", "s3") if _EXTERNAL[name] not in self.external]

    def _build(self, *, reassign: bool = True) -> list[ManagedService]:
        """Service handles on the remembered ports (not started); ``reassign`` replaces taken ports."""
        if self.services:
            return self.services
        keys = self._secrets()
        ports = {k: int(v) for k, v in self._load_json(self.ports_path).items()}
        services: list[ManagedService] = []
        for name in self._managed():
            port = ports.get(name, self.default_ports[name])
            service = self._service(name, port, keys)
            if reassign and not service.is_running() and port_in_use("127.0.0.1", port):
                service.port = port = free_port()  # someone else holds it: remember another
            ports[name] = port
            services.append(service)
        if reassign:
            self.ports_path.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
        self.services = services
        return services

    def _service(self, name: str, port: int, keys: Mapping[str, str]) -> ManagedService:
        data = self.root / name
        if name == "postgres":
            return Postgres(self._postgres_dir(data), port, user=self.pg_user, durable=self.persist)
        if name == "redis":
            return Redis(data, port, persist=self.persist)
        return SeaweedS3(data, port, access_key=keys["s3_access_key"], secret_key=keys["s3_secret_key"], bucket=BUCKET)

    def _postgres_dir(self, data: Path) -> Path:
        """Where PostgreSQL keeps its files. Its system user cannot enter a checkout under /root (0700), so
        there the cluster lives in /var/lib/heaters and `.data/postgres` is a link to it."""
        if os.geteuid() != 0 or (data.is_symlink() and data.resolve().is_dir()):
            return data.resolve() if data.is_symlink() else data
        user = ensure_system_user(self.pg_user)
        if _blocking_dir(self.root, user.pw_uid, os.getgrouplist(user.pw_name, user.pw_gid)) is None:
            return data
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        real = PG_COPY_ROOT / f"data-{digest}" / "postgres"
        real.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(PG_COPY_ROOT, 0o755)
        os.chmod(real.parent, 0o755)
        if not data.exists() and not data.is_symlink():
            data.symlink_to(real)
        return real

    def _compose_env(self, keys: Mapping[str, str]) -> dict[str, str]:
        by_name = {s.name: s for s in self.services}
        env: dict[str, str] = {}
        for name, var in _EXTERNAL.items():
            env[var] = self.external[var] if name not in by_name else by_name[name].url
        if "s3" in by_name:
            env |= {
                "S3_BUCKET": BUCKET,
                "AWS_ACCESS_KEY_ID": keys["s3_access_key"],
                "AWS_SECRET_ACCESS_KEY": keys["s3_secret_key"],
                "AWS_REGION": REGION,
            }
        else:
            needed = ("S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            missing = [var for var in needed if not self.external.get(var)]
            if missing:
                raise ConfigError(
                    f"S3_ENDPOINT_URL is given, so {', '.join(missing)} must be given too (the local S3 "
                    "server is not started)."
                )
            env |= {var: self.external[var] for var in needed}
            env["AWS_REGION"] = self.external.get("AWS_REGION", REGION)
        env["SECRET_KEY"] = self.external.get("SECRET_KEY") or keys["secret_key"]
        return env

    # --- lifecycle
    def start(self, timeout: float = 60.0) -> dict[str, str]:
        """Start (or reuse) every managed service; return the environment for child processes."""
        _mkdirs(self.root)
        keys = self._secrets()
        services = self._build()
        env = self._compose_env(keys)  # validates external S3 settings before anything starts
        try:
            for service in services:
                service.start(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self.env = env
        lines = ["# Written by heaters.devstack.LocalStack while the local stack runs; removed at stop."]
        lines += [f"{key}={value}" for key, value in env.items()]
        _write_private(self.env_path, "\n".join(lines) + "\n")
        return dict(env)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every managed service, in reverse order, including ones another process started here."""
        self.env_path.unlink(missing_ok=True)
        services = self.services or (self._build(reassign=False) if self.secrets_path.exists() else [])
        errors: list[ServiceError] = []
        for service in reversed(services):
            try:
                service.stop(timeout=timeout)
            except ServiceError as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProcessGroup:
    """A tiny supervisor: named children in their own process groups, output prefixed with the name.

    ``run()`` blocks until SIGINT/SIGTERM/SIGHUP or until any child exits, then stops every child
    (SIGTERM to its group, SIGKILL after ``stop_timeout``) and finally the stack, if one was given.
    Children get their own sessions so a terminal's Ctrl-C reaches only us and we stop them in order.
    """

    SUPERVISOR = "devstack"

    def __init__(
        self, stack: LocalStack | None = None, *, stop_timeout: float = 10.0, out: IO[str] | None = None
    ) -> None:
        self.stack = stack
        self.stop_timeout = stop_timeout
        self.out = out if out is not None else sys.stdout
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._force = threading.Event()
        self._signal: int | None = None
        self._stopping = False
        self._stopped = False

    # --- output
    def _emit(self, name: str, line: str) -> None:
        """Never raises: a closed stdout (`make run | head`, a dead terminal) must not stop the cleanup."""
        with self._lock:
            width = max([len(self.SUPERVISOR), *(len(n) for n in self.children)])
            with contextlib.suppress(OSError, ValueError):
                self.out.write(f"{name:<{width}} | {line}\n")
                self.out.flush()

    def emit(self, name: str, line: str) -> None:
        """Print a line of our own among the children's output."""
        self._emit(name, line)

    @property
    def stopping(self) -> bool:
        """True once a signal or a child's exit has asked everything to stop."""
        return self._wake.is_set()

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(stream.readline, b""):
                self._emit(name, raw.decode("utf-8", "replace").rstrip("\r\n"))

    # --- children
    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        inherit_env: bool = True,
    ) -> subprocess.Popen[bytes]:
        """Start a child; ``env`` is added to ours (or replaces it with ``inherit_env=False``)."""
        if name in self.children:
            raise ValueError(f"a child named {name!r} already runs")
        child_env = {**(os.environ if inherit_env else {}), **(env or {})}
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        proc = subprocess.Popen(
            # If the supervisor itself is killed, its children go too (a graceful stop is ours to do).
            [*DIE_WITH_PARENT, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
        )
        with self._lock:
            self.children[name] = proc
        assert proc.stdout is not None
        reader = threading.Thread(target=self._pump, args=(name, proc.stdout), daemon=True, name=f"out-{name}")
        reader.start()
        self._readers.append(reader)
        self._emit(self.SUPERVISOR, f"started {name} (pid {proc.pid}): {' '.join(argv)}")
        return proc

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self._force.set()  # a second Ctrl-C: stop waiting politely
        self._signal = signum
        self._wake.set()

    def run(self, poll_interval: float = 0.2) -> int:
        """Supervise until a signal or a child's exit; returns 0 after a signal, else the child's code."""
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in handled:
                previous[signum] = signal.signal(signum, self._on_signal)
        code = 0
        try:
            while not self._wake.is_set():
                for name, proc in self.children.items():
                    returncode = proc.poll()
                    if returncode is not None:
                        self._emit(self.SUPERVISOR, f"{name} exited with code {returncode}; stopping everything")
                        code = returncode or 1
                        self._wake.set()
                        break
                self._wake.wait(poll_interval)
            if self._signal is not None:
                self._emit(self.SUPERVISOR, f"got {signal.Signals(self._signal).name}; stopping everything")
        finally:
            try:
                self.shutdown()
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)
        return code

    def _alive(self, proc: subprocess.Popen[bytes]) -> bool:
        return proc.poll() is None or bool(group_members(proc.pid))

    def _signal_group(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)

    def shutdown(self) -> None:
        """Stop every child (group SIGTERM, then SIGKILL after stop_timeout), then the stack. Idempotent."""
        if self._stopped:
            return
        self._stopping = True
        try:
            running = [(n, p) for n, p in reversed(self.children.items()) if self._alive(p)]
            for name, proc in running:
                self._emit(self.SUPERVISOR, f"stopping {name} (pid {proc.pid})")
                self._signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while any(self._alive(p) for _, p in running) and time.monotonic() < deadline:
                if self._force.is_set():
                    break
                time.sleep(0.05)
            for name, proc in running:
                if self._alive(proc):
                    self._emit(self.SUPERVISOR, f"{name} did not stop in time; killing its process group")
                    self._signal_group(proc, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while any(self._alive(p) for _, p in running) and time.monotonic() < deadline:
                time.sleep(0.05)
            for reader in self._readers:
                reader.join(timeout=2.0)
            for proc in self.children.values():
                if proc.stdout is not None:
                    proc.stdout.close()
        finally:
            self._stopped = True
            if self.stack is not None:
                self._emit(self.SUPERVISOR, "stopping services")
                self.stack.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
