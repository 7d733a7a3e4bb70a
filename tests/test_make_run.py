"""`make run` is `heaters up`: the whole local stack starts, the first-start demo is cut into clips by its
worker, and Ctrl-C stops all of it cleanly.

The only non-browser test that builds the frontend (.web): the browser tests run after this suite, in a
step of their own, so two Reflex builds never share .web at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values
from sqlalchemy import create_engine, text

from heaters.devstack.service import free_port
from heaters.settings import Settings, sqlalchemy_database_url
from heaters.supervisor import stop_process_group
from heaters.up import EXTERNAL_VARIABLES
from tests.fixtures.workers import wait_for

ROOT = Path(__file__).resolve().parents[1]
DEMO_CLIPS = 13  # the demo's twelve hard cuts


def _own_environment(port: int) -> dict[str, str]:
    """This shell's environment without anything that would point `heaters up` at other services."""
    ours = {str(c) for f in Settings.model_fields.values() for c in getattr(f.validation_alias, "choices", [])}
    env = {k: v for k, v in os.environ.items() if k not in ours and k not in EXTERNAL_VARIABLES}
    return {**env, "PORT": str(port), "REFLEX_TELEMETRY_ENABLED": "false"}


def _demo_clips(data: Path) -> int:
    stack = data / "stack.env"
    if not stack.exists():
        return 0
    url = dotenv_values(stack).get("DATABASE_URL")
    if not url:
        return 0
    engine = create_engine(sqlalchemy_database_url(url))
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM clips WHERE ingest_state = 'pending_review'")
                ).scalar_one()
            )
    except Exception as error:  # the schema is not there yet: not ready, say why if it never gets there
        if "does not exist" in str(error):
            return 0
        raise
    finally:
        engine.dispose()


def test_heaters_up_runs_the_stack_cuts_the_demo_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "up.log"
    os.chmod(tmp_path, 0o755)  # PostgreSQL runs as a system user and must enter it
    code = f"import sys; from pathlib import Path; from heaters.up import run_up; sys.exit(run_up(Path({str(data)!r})))"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=_own_environment(free_port()),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def healthy() -> bool:
            text_so_far = log.read_text()
            assert "exited with code" not in text_so_far, text_so_far[-4000:]  # a child died: make run is broken
            assert up.poll() is None, text_so_far[-4000:]
            return "Heaters is ready at" in text_so_far

        wait_for(healthy, timeout=300, what="heaters up to be ready", logs=[log])
        wait_for(
            lambda: healthy() and _demo_clips(data) == DEMO_CLIPS,
            timeout=300,
            what="the demo cut into its clips",
            logs=[log],
        )
        assert (data / "metrics").is_dir()  # the web's /metrics reads the workers' counters there

        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole foreground group
        assert up.wait(timeout=120) == 0, log.read_text()[-4000:]
        assert "exited with code" not in log.read_text()
    finally:
        if up.poll() is None:
            stop_process_group(up.pid, popen=up, timeout=60)
