"""Importing the app reads no secret and opens no connection: the image builds its frontend with none."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Any connection attempt or settings read during import fails the import, naming what was tried.
GUARDED_IMPORT = textwrap.dedent(
    """
    import socket, sys
    sys.path.insert(0, {root!r})

    def refuse(self, address):
        raise AssertionError(f"import opened a connection to {{address}}")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse

    import heaters.settings as settings
    def no_settings():
        raise AssertionError("import read the settings (secrets)")
    settings.get_settings = no_settings
    settings.load_settings = no_settings

    {body}
    print("imported")
    """
)


def run_guarded(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """In an empty environment and a directory with no .env: only what an image build has."""
    code = GUARDED_IMPORT.format(root=str(ROOT), body=body)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_app_imports_with_no_configuration(tmp_path: Path) -> None:
    result = run_guarded("import heaters.heaters", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout


def test_the_actor_modules_import_with_no_secrets(tmp_path: Path) -> None:
    """The actors declare on a broker built from a URL; only the worker's entry module reads settings."""
    body = (
        "import dramatiq\n"
        "from heaters_workers.broker import build_broker\n"
        "dramatiq.set_broker(build_broker('redis://127.0.0.1:1/0'))\n"
        "import heaters_workers.actors"
    )
    result = run_guarded(body, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_guard_catches_a_settings_read(tmp_path: Path) -> None:
    """The check above can fail: reading the settings at import is refused."""
    result = run_guarded("import heaters.settings as s\ns.get_settings()", tmp_path)
    assert result.returncode != 0
    assert "read the settings" in result.stderr
