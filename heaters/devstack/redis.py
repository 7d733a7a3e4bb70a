"""Redis for the local stack and the tests: redis-server from the system (apt), run as our own child."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

from heaters.devstack.service import LOCALHOST, _ChildService


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
