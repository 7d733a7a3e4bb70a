"""Playback fixtures: real proxies made once per session, the `Playback` harness, a signed-in client."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from heaters.videos.encode import encode_proxy
from tests.media import synth

from .helpers import PathRecorder, Playback, Proxy, decode_frames

# Scene lengths in frames, all different: cuts at 37, 66, 107; 140 frames.
SCENES = (37, 29, 41, 33)
RATES = {"25": Fraction(25), "29.97": Fraction(30000, 1001)}
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Proxy]:
    root = tmp_path_factory.mktemp("playback_media")
    made: dict[str, Proxy] = {}
    for name, fps in RATES.items():
        source = synth.make_cut_video(root / f"source_{name}.mp4", fps=fps, scene_frames=SCENES)
        encoded = encode_proxy(source.path, root / name, crf=28, timeout=120)
        info = encoded.info
        frames = decode_frames(encoded.path, width=info.width, height=info.height)
        assert info.fps == fps and info.frame_count == source.frame_count == len(frames) == sum(SCENES)
        # Every frame differs from every other, so a pixel-equal frame is that very frame.
        assert len(set(frames)) == len(frames), f"the {name} proxy has repeated frames"
        made[name] = Proxy(name, encoded.path, info.fps, info.frame_count, info.width, info.height, tuple(frames))
    return made


@pytest.fixture
def playback(engine: Engine, broker: Any, tmp_path: Path) -> Iterator[Playback]:
    """The harness on the migrated DB, with messages going to the test Redis (the `broker` fixture)."""
    harness = Playback(engine, tmp_path)
    try:
        yield harness
    finally:
        harness.restore()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> PathRecorder:
    from heaters import api
    from heaters.playback import serve

    monkeypatch.setattr(serve, "_recorded", {})  # the route's in-process throttle of last_served_at writes
    return PathRecorder(api.create_api())


@pytest.fixture
def anonymous(playback: Playback, recorder: PathRecorder) -> Iterator[TestClient]:
    with TestClient(recorder) as client:
        yield client


@pytest.fixture
def client(playback: Playback, recorder: PathRecorder) -> Iterator[TestClient]:
    """Signed in through the real form POST /api/login; the session cookie stays in the client's jar."""
    from heaters.auth.service import create_user
    from heaters.auth.tokens import COOKIE_NAME
    from heaters.db import unit_of_work

    with unit_of_work() as session:
        create_user(session, "reviewer", PASSWORD)
    with TestClient(recorder) as client:
        response = client.post(
            "/api/login", data={"username": "reviewer", "password": PASSWORD}, follow_redirects=False
        )
        assert response.status_code == 303 and response.headers["location"] == "/", response.text
        assert client.cookies.get(COOKIE_NAME)
        yield client
