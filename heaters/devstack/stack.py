"""The local development stack (`make run`): PostgreSQL, Redis and S3 under one root, on stable ports.

Why: local development must only swap endpoints (DESIGN.md §9). ``LocalStack`` starts PostgreSQL, Redis
and S3 under one root (``.data/``) on stable ports, keeps generated secrets there, and hands child
processes the same environment variables production uses. Any of DATABASE_URL / REDIS_URL /
S3_ENDPOINT_URL given from outside wins, and that service is not started. `heaters up` runs the web app
and workers next to it under ``heaters.supervisor.ProcessGroup``, which stops the stack last.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from heaters.devstack.postgres import PG_COPY_ROOT, Postgres, _blocking_dir, ensure_system_user
from heaters.devstack.redis import Redis
from heaters.devstack.seaweed import SeaweedS3
from heaters.devstack.service import ManagedService, ServiceError, _write_private, free_port
from heaters.errors import ConfigError
from heaters.ports import port_in_use

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
