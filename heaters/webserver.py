"""`heaters web`: run Reflex in production mode (frontend, API, websocket on one port)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from heaters.errors import ConfigError
from heaters.migrations import ROOT
from heaters.ports import port_in_use
from heaters.settings import get_settings

TOOLS_BIN = ROOT / ".tools" / "bin"

# Reflex must make no outbound calls here: no telemetry, no version check, bun from our own install.
REFLEX_ENV = {
    "REFLEX_TELEMETRY_ENABLED": "false",
    "REFLEX_CHECK_LATEST_VERSION": "false",
    "REFLEX_HTTP_CLIENT_BIND_ADDRESS": "0.0.0.0",
    "NPM_CONFIG_REGISTRY": os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/"),
}


def reflex_env(port: int, *, log_json: bool = False) -> dict[str, str]:
    env = {**os.environ, **REFLEX_ENV, "PORT": str(port)}
    if log_json:  # LOG_FORMAT=json: Reflex's and Granian's own lines as JSON too (ours: heaters.logs)
        env["REFLEX_LOG_JSON"] = "true"
    env["PATH"] = f"{TOOLS_BIN}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def exec_web(port: int | None = None) -> None:
    settings = get_settings()  # fail now, with a clear message, on bad configuration
    port = port or settings.port
    if port_in_use(settings.bind_host, port):
        raise ConfigError(f"Port {port} is already in use: stop what is using it or set PORT to another port.")
    reflex = str(Path(sys.executable).with_name("reflex"))
    os.chdir(ROOT)
    env = reflex_env(port, log_json=settings.log_format == "json")
    os.execve(reflex, [reflex, "run", "--env", "prod", "--loglevel", "warning"], env)
