"""`/media/temp/{name}`: signed-in only, byte ranges as a video element asks for them, and nothing but the cache.

The files are real temp clips made by `generate`; requests go through Starlette's TestClient, except the
traversal attempts, which are sent with their exact raw path (httpx would remove `..` before sending).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from heaters import api
from heaters.auth.tokens import COOKIE_NAME, issue_token
from heaters.playback import names

from .helpers import PathRecorder, Playback, Proxy, asgi_request

SECRET = b"NOT A TEMP CLIP: bytes outside the playback cache must never be served"


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names the route looked up (it must not look any other name up)."""
    seen: list[str] = []
    real: Callable[[str], Path | None] = api.resolve_temp_clip

    def spy(name: str) -> Path | None:
        seen.append(name)
        return real(name)

    monkeypatch.setattr(api, "resolve_temp_clip", spy)
    return seen


@pytest.fixture
def temp_clip(playback: Playback, proxies: dict[str, Proxy]) -> tuple[dict[str, Any], bytes]:
    """A ready temp clip in the cache (a real stream copy of 41 frames) and its bytes."""
    row = playback.generate(playback.clip(playback.video(proxies["25"]), 66, 107))
    assert row["state"] == "ready", row["error"]
    data = playback.cache_file(row).read_bytes()
    assert len(data) > 1000
    return row, data


def test_the_whole_file_with_ranges_announced(
    client: TestClient, temp_clip: tuple[dict[str, Any], bytes], resolved: list[str]
) -> None:
    row, data = temp_clip
    response = client.get(names.media_url(row["filename"]))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == str(len(data))
    assert "immutable" in response.headers["cache-control"]
    assert resolved == [row["filename"]]


def test_byte_ranges(client: TestClient, temp_clip: tuple[dict[str, Any], bytes]) -> None:
    row, data = temp_clip
    url, size = names.media_url(row["filename"]), len(data)

    first = client.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    assert first.headers["content-length"] == "100"
    assert first.content == data[:100]

    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    assert tail.content == data[-10:]

    rest = client.get(url, headers={"Range": "bytes=100-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes 100-{size - 1}/{size}"
    assert rest.content == data[100:]

    middle = client.get(url, headers={"Range": f"bytes=1000-{size + 500}"})  # an end past the file is clamped
    assert middle.status_code == 206
    assert middle.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    assert middle.content == data[1000:]

    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert data[:100] not in beyond.content


def test_head_sends_the_headers_only(client: TestClient, temp_clip: tuple[dict[str, Any], bytes]) -> None:
    row, data = temp_clip
    response = client.head(names.media_url(row["filename"]))
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes" and response.headers["content-type"] == "video/mp4"
    assert response.content == b""
    ranged = client.head(names.media_url(row["filename"]), headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.headers["content-range"] == f"bytes 0-99/{len(data)}"
    assert ranged.content == b""


def test_a_get_records_when_the_file_was_served(
    client: TestClient, playback: Playback, temp_clip: tuple[dict[str, Any], bytes]
) -> None:
    row, _ = temp_clip
    assert row["last_served_at"] is None
    assert client.get(names.media_url(row["filename"]), headers={"Range": "bytes=0-99"}).status_code == 206
    served = playback.row(row["clip_id"])["last_served_at"]
    assert served is not None and served >= row["ready_at"]


@pytest.mark.parametrize("name", ["foo.mp4", "clip_1.mp4", "clip_x_1.mp4", "clip_1_2.mp4.part", "x/clip_1_2.mp4"])
def test_names_that_are_not_temp_clips_are_404_before_any_lookup(
    name: str, client: TestClient, playback: Playback, resolved: list[str]
) -> None:
    cache = playback.use(playback.root / "cache", shared=False)
    cache.mkdir(parents=True, exist_ok=True)
    planted = cache / name
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(SECRET)
    response = client.get(f"/media/temp/{name}")
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
    assert resolved == []


def test_a_raw_request_reaches_the_route(
    client: TestClient, recorder: PathRecorder, temp_clip: tuple[dict[str, Any], bytes]
) -> None:
    """The raw path helper below, checked on a good name: it gets the file (so its 404s mean something)."""
    row, data = temp_clip
    cookie = f"{COOKIE_NAME}={client.cookies.get(COOKIE_NAME)}"
    response = asgi_request(recorder, names.media_url(row["filename"]).encode(), cookie=cookie)
    assert response.status == 200 and response.body == data
    assert recorder.paths[-1] == names.media_url(row["filename"])
    assert asgi_request(recorder, names.media_url(row["filename"]).encode()).status == 401


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/media/temp/../etc/passwd",
        b"/media/temp/../clip_1_2.mp4",
        b"/media/temp/clip_1_2.mp4%2F..",
        b"/media/temp/%2e%2e%2fclip_1_2.mp4",
        b"/media/temp/..%2Fclip_1_2.mp4",
        b"/media/temp/%2E%2E/outside/clip_1_2.mp4",
        b"/media/temp/clip_1_2.mp4%00",
        b"/media/temp/clip_1_2.mp4%00.jpg",
        b"/media/temp/%2Fetc%2Fpasswd",
    ],
)
def test_traversal_and_nul_bytes_never_leave_the_cache(
    raw_path: bytes, client: TestClient, playback: Playback, recorder: PathRecorder, resolved: list[str]
) -> None:
    """A file that a naive join would reach sits next to the cache; the route must not even look it up."""
    web = playback.root / "web"
    cache = playback.use(web / "cache", shared=False)
    cache.mkdir(parents=True)
    (web / "clip_1_2.mp4").write_bytes(SECRET)
    (web / "outside").mkdir()
    (web / "outside" / "clip_1_2.mp4").write_bytes(SECRET)
    cookie = f"{COOKIE_NAME}={client.cookies.get(COOKIE_NAME)}"

    response = asgi_request(recorder, raw_path, cookie=cookie)

    name = recorder.paths[-1].removeprefix("/media/temp/")  # what the app was given, decoded once
    assert name == unquote(raw_path.decode("ascii")).removeprefix("/media/temp/")
    assert ".." in name or "/" in name or "\x00" in name, name
    assert response.status == 404, (name, response.status)
    assert SECRET not in response.body
    assert resolved == []
    assert sorted(p.name for p in cache.iterdir()) == []


def test_signed_out_is_401_whatever_the_name(
    anonymous: TestClient, temp_clip: tuple[dict[str, Any], bytes], resolved: list[str]
) -> None:
    row, data = temp_clip
    for url in (names.media_url(row["filename"]), "/media/temp/clip_999_1.mp4", "/media/temp/foo.mp4"):
        for method in ("GET", "HEAD"):
            response = anonymous.request(method, url, headers={"Range": "bytes=0-99"})
            assert response.status_code == 401, (method, url)
            assert data[:100] not in response.content
    assert anonymous.get(names.media_url(row["filename"])).json() == {"error": "sign in required"}
    forged = issue_token(1, "not-the-secret-key-" * 3)
    response = anonymous.get(names.media_url(row["filename"]), headers={"Cookie": f"{COOKIE_NAME}={forged}"})
    assert response.status_code == 401
    assert resolved == []


def test_a_token_for_a_deactivated_user_is_401(
    client: TestClient, playback: Playback, temp_clip: tuple[dict[str, Any], bytes]
) -> None:
    row, _ = temp_clip
    url = names.media_url(row["filename"])
    assert client.get(url).status_code == 200
    with playback.engine.begin() as connection:
        connection.execute(text("UPDATE users SET is_active = false"))
    assert client.get(url).status_code == 401


def test_a_well_formed_unknown_name_is_404(client: TestClient, playback: Playback, resolved: list[str]) -> None:
    response = client.get("/media/temp/clip_999_1700000000000.mp4")
    assert response.status_code == 404 and response.json() == {"error": "not found"}
    assert resolved == ["clip_999_1700000000000.mp4"]
    assert playback.rows() == []
