"""What every local server shares: ``ManagedService`` (the interface), ``_ChildService`` (a server we launch
and supervise ourselves), ``ServiceError``, port picking and the log/file helpers.

Every server in this package:

- listens on 127.0.0.1 only, on a port the caller chooses;
- keeps its data, its pid file and its log (``<data_dir>/<name>.log``) under one directory;
- can be started again from the same directory: a server already running there with the same
  configuration is reused, one with a different configuration is restarted;
- is stopped gracefully, then killed together with its whole process group, so nothing outlives stop().
"""

from __future__ import annotations

import abc
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sysconfig
import time
from pathlib import Path
from typing import Self

from heaters.errors import HeatersError
from heaters.ports import port_in_use
from heaters.supervisor import exe_name, group_members, pid_alive, stop_process_group

LOCALHOST = "127.0.0.1"
_TAIL_LINES = 20
_LOG_MARK = b"=== heaters devstack: starting "
# Unix socket paths longer than this (sun_path is 108 bytes) cannot be bound.
_MAX_SOCKET_PATH = 100


class ServiceError(HeatersError):
    """A local service could not be started, reached or stopped; the message names it and shows its log."""


# --------------------------------------------------------------------------------------------- ports

_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, never the same one twice in this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOCALHOST, 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out and not port_in_use(LOCALHOST, port):
            _handed_out.add(port)
            return port
    raise ServiceError("No free TCP port could be found on 127.0.0.1.")


def _free_port_pair(offset: int) -> int:
    """A port p with p and p + offset both free (weed's admin worker dials admin.port + 10000)."""
    for _ in range(200):
        port = free_port()
        if port + offset > 65535:
            continue
        if port + offset not in _handed_out and not port_in_use(LOCALHOST, port + offset):
            _handed_out.add(port + offset)
            return port
    raise ServiceError(f"No pair of free TCP ports {offset} apart could be found on 127.0.0.1.")


# --------------------------------------------------------------------------------------------- files


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """The last lines of a log, from the most recent start only."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return ""
    mark = data.rfind(_LOG_MARK)
    if mark >= 0:
        data = data[data.find(b"\n", mark) + 1 :]
    text = data.decode("utf-8", "replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it may hold keys), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _find_in_scripts(name: str) -> str | None:
    """A console binary installed by a wheel next to our interpreter, else on PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


# ------------------------------------------------------------------------------------------ services


class ManagedService(abc.ABC):
    """One local server owning ``data_dir``: start (idempotent), wait_ready, stop (leaves no process)."""

    name: str = "service"  # file names: <data_dir>/<name>.log, <name>.pid
    label: str = "Service"  # for humans, in error messages

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = int(port)

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Connection URL for clients."""

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / f"{self.name}.pid"

    @abc.abstractmethod
    def start(self, timeout: float = 30.0) -> None:
        """Start, or reuse the server already running from this data dir with the same configuration."""

    @abc.abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully; after ``timeout`` kill the process group. Nothing may be left running."""

    @abc.abstractmethod
    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the server answers real requests, or raise ServiceError."""

    @abc.abstractmethod
    def pid(self) -> int | None:
        """Pid of the server running from this data dir, None if none is."""

    def is_running(self) -> bool:
        return self.pid() is not None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(data_dir={str(self.data_dir)!r}, port={self.port})"

    def _error(self, what: str) -> ServiceError:
        """One sentence naming the service and what went wrong, then the tail of its log."""
        tail = _tail(self.log_path)
        where = f"Last lines of {self.log_path}:\n{tail}" if tail else f"(nothing in {self.log_path})"
        return ServiceError(f"{self.label} {what}. {where}")

    def _mark_log(self, detail: str) -> None:
        """A header in the log so error reports show only the latest attempt."""
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(b"\n" + _LOG_MARK + f"{stamp} {detail}\n".encode())


class _ChildService(ManagedService):
    """A server we launch ourselves, in its own session, with our own pid file."""

    exe_names: tuple[str, ...] = ()
    install_hint: str = ""

    def __init__(self, data_dir: Path, port: int, *, binary: str | None = None) -> None:
        super().__init__(data_dir, port)
        self._binary_override = binary
        self._proc: subprocess.Popen[bytes] | None = None

    # --- to implement
    @abc.abstractmethod
    def _find_binary(self) -> str | None: ...

    @abc.abstractmethod
    def _prepare(self) -> str:
        """Write config files; return a fingerprint of everything that requires a restart when changed."""

    @abc.abstractmethod
    def _argv(self, binary: str) -> list[str]: ...

    @abc.abstractmethod
    def _probe(self) -> bool:
        """One quick readiness check."""

    def _ports(self) -> list[int]:
        """Every TCP port the server will bind (all must be free before it starts)."""
        return [self.port]

    def _after_ready(self, deadline: float) -> None:
        """Work once the server answers (e.g. create the bucket)."""

    def _after_stop(self) -> None:
        """Remove leftovers (sockets) once the process is gone."""

    def _env(self) -> dict[str, str]:
        """A minimal environment: inherited variables must not reconfigure the server."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.data_dir),
            "LANG": "C.UTF-8",
        }

    # --- shared machinery
    @property
    def _fingerprint_path(self) -> Path:
        return self.data_dir / f"{self.name}.fingerprint"

    def binary(self) -> str:
        found = self._binary_override or self._find_binary()
        if not found or not (Path(found).is_file() and os.access(found, os.X_OK)):
            raise ServiceError(f"{self.label} cannot start because its binary is missing: {self.install_hint}.")
        return found

    def pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.pid_path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid_alive(pid) and exe_name(pid) in self.exe_names:
            return pid
        return None

    def start(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = self.binary()
        running = self.pid()
        fingerprint = self._prepare()
        if running is not None:
            with contextlib.suppress(OSError):
                if self._fingerprint_path.read_text() == fingerprint and self._probe():
                    self._after_ready(deadline)
                    return
            self.stop()
        self._after_stop()  # leftovers of a crashed run
        for port in self._ports():
            if port_in_use(LOCALHOST, port):
                raise ServiceError(
                    f"{self.label} cannot start because port {port} on {LOCALHOST} is already taken by another process."
                )
        argv = self._argv(binary)
        self._mark_log(shlex.join(argv))
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                env=self._env(),
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        self._fingerprint_path.write_text(fingerprint)
        try:
            self.wait_ready(max(0.5, deadline - time.monotonic()))
            self._after_ready(deadline)
        except BaseException:
            self.stop(timeout=5.0)
            raise

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None:
                code = self._proc.poll()
                if code is not None:
                    raise self._error(f"exited with code {code} while starting on port {self.port}")
            elif self.pid() is None:
                raise self._error(f"is not running from {self.data_dir}")
            if self._probe():
                return
            if time.monotonic() > deadline:
                raise self._error(f"did not become ready on port {self.port} within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is not None:
            popen = self._proc if self._proc is not None and self._proc.pid == pid else None
            stop_process_group(pid, timeout=timeout, popen=popen)
            if pid_alive(pid) or group_members(pid):
                raise self._error(f"process {pid} survived SIGKILL")
        self._proc = None
        for path in (self.pid_path, self._fingerprint_path):
            path.unlink(missing_ok=True)
        self._after_stop()
