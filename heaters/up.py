"""`heaters up` (what `make run` runs): the whole stack in the foreground, stopped cleanly on Ctrl-C.

Services come from `.data/` (embedded PostgreSQL, Redis, SeaweedFS) unless DATABASE_URL, REDIS_URL or
S3_ENDPOINT_URL point elsewhere. Then migrations, the first admin, the demo video on the first start,
and the worker, scheduler and web processes under one supervisor.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import httpx
from dotenv import dotenv_values
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from heaters import metrics
from heaters.devstack.stack import LocalStack
from heaters.errors import ConfigError
from heaters.migrations import ROOT
from heaters.ports import port_in_use
from heaters.settings import STACK_ENV_FILE, WebSettings, sqlalchemy_database_url
from heaters.supervisor import ProcessGroup

# Variables that, when set, replace a local service (and what comes with it).
EXTERNAL_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "S3_ENDPOINT_URL",
    "S3_BUCKET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "SECRET_KEY",
)


def check_database_url(url: str) -> None:
    """Fail before anything starts, in one sentence, when a given DATABASE_URL cannot be used."""
    try:
        sqlalchemy_url = sqlalchemy_database_url(url)
    except ValueError:
        raise ConfigError(f"DATABASE_URL is not a postgresql:// URL: {url!r}.") from None
    engine = create_engine(sqlalchemy_url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise ConfigError(f"Cannot connect to the database in DATABASE_URL: {reason}") from None
    finally:
        engine.dispose()


def _prepare(env: dict[str, str], data_root: Path) -> str | None:
    """Migrate, make sure an admin exists; returns the admin's first password if we know it."""
    os.environ.update(env)
    from heaters import adapters, migrations
    from heaters.auth.service import ensure_admin
    from heaters.db import unit_of_work
    from heaters.settings import get_settings

    get_settings.cache_clear()
    adapters.get_storage.cache_clear()
    settings = get_settings()
    migrations.upgrade(settings.sqlalchemy_url)
    password_file = data_root / "admin-password"
    with unit_of_work() as session:
        password = ensure_admin(session)
    if password:
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
    return password_file.read_text().strip() if password_file.exists() else None


def _ingest_demo_once(data_root: Path, log: ProcessGroup) -> None:
    """On the very first start, a demo video so a new user has clips to review within a minute."""
    marker = data_root / "demo-ingested"
    if marker.exists():
        return
    try:
        from heaters.adapters import get_storage
        from heaters.db import unit_of_work
        from heaters.media.demo import make_demo_video
        from heaters.settings import get_settings
        from heaters.videos.ingest import ingest_file
        from heaters_workers.broker import setup_broker

        setup_broker(get_settings().redis_url)
        path = data_root / "demo" / "heaters-demo.mp4"
        path.parent.mkdir(exist_ok=True)
        made = make_demo_video(path, timeout=600)
        with unit_of_work() as session:
            result = ingest_file(session, get_storage(), made.path, title="Heaters demo")
        marker.write_text(f"{result.video_id}\n")
        path.unlink(missing_ok=True)
        log.emit("up", f"demo video ingested as video {result.video_id}; its clips appear as soon as it is processed")
    except Exception as error:  # the demo is a convenience: report it, keep the stack running
        log.emit("up", f"could not ingest the demo video: {error}")


def _announce_when_ready(url: str, password: str | None, group: ProcessGroup) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not group.stopping:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                login = f"admin / {password}" if password else "your admin account"
                group.emit("up", f"Heaters is ready at {url}  (sign in as {login})")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


def run_up(data_root: Path | None = None) -> int:
    root = (data_root or ROOT / STACK_ENV_FILE.parent).absolute()
    web = WebSettings()
    if port_in_use(web.bind_host, web.port):
        raise ConfigError(f"Port {web.port} is already in use: stop what is using it or set PORT to another port.")
    given = {**dotenv_values(ROOT / ".env"), **os.environ}  # the same sources the settings read
    external = {name: str(given[name]) for name in EXTERNAL_VARIABLES if given.get(name)}
    if "DATABASE_URL" in external:
        check_database_url(external["DATABASE_URL"])

    stack = LocalStack(root, external=external)
    group = ProcessGroup(stack, stop_timeout=20.0)
    try:
        env = stack.start()
        password = _prepare(env, root)
        heaters = str(Path(sys.executable).with_name("heaters"))
        # One host: the web's /metrics reads the workers' counters from the same directory, which must
        # exist before any child imports heaters.metrics (its counters open their files at import).
        env = {**env, "METRICS_DIR": str(root / "metrics"), **metrics.prepare_dir(root / "metrics")}
        group.start("worker", [heaters, "worker"], env=env, cwd=ROOT)  # all queues, and the scheduler
        group.start("web", [heaters, "web"], env=env, cwd=ROOT)
    except BaseException:
        group.shutdown()
        raise
    url = f"http://{'127.0.0.1' if web.bind_host in ('0.0.0.0', '127.0.0.1') else web.bind_host}:{web.port}"
    threading.Thread(target=_announce_when_ready, args=(url, password, group), daemon=True).start()
    threading.Thread(target=_ingest_demo_once, args=(root, group), daemon=True).start()
    return group.run()
