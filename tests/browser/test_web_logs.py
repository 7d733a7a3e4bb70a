"""LOG_FORMAT=json in the web process: every line it writes is one JSON object, Reflex's and Granian's too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def test_every_web_line_is_a_json_object(web_url: str, web_log: Path) -> None:
    lines = [line for line in web_log.read_text().splitlines() if line.strip()]
    assert lines, "the web process wrote nothing"
    records, not_json = [], []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            not_json.append(line)
            continue
        (records if isinstance(record, dict) else not_json).append(record if isinstance(record, dict) else line)
    assert not not_json, f"{len(not_json)} of {len(lines)} lines are not JSON objects, e.g.: {not_json[:5]}"
    started = [r for r in records if r.get("logger") == "heaters.heaters" and r["message"].startswith("web.started")]
    # GRANIAN_WORKERS=2: each server process says it started, with its pid and the format as fields.
    assert len({r["pid"] for r in started}) == 2, started
    assert all(r["log_format"] == "json" and r["level"] == "info" for r in started), started
