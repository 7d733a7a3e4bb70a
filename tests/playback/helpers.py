"""Helpers for the playback tests: the `Playback` harness, decoded frames, ffprobe, the Dramatiq queue in Redis,
raw ASGI requests.

The harness switches PLAYBACK_CACHE_DIR / PLAYBACK_SHARED the way tests/conftest.py does (environment, then
the cached settings and adapters cleared), so one test can play the worker host and then the web host.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Engine, text

from heaters.media.tools import run_tool

TIMEOUT = 60.0
SETTING_KEYS = ("PLAYBACK_CACHE_DIR", "PLAYBACK_SHARED")


def clear_caches() -> None:
    """As tests/conftest.py `_clear_caches`: settings and every adapter built from them."""
    from heaters import adapters
    from heaters.settings import get_settings

    get_settings.cache_clear()
    adapters.get_storage.cache_clear()
    adapters.get_media_urls.cache_clear()
    adapters.get_redis.cache_clear()
    adapters.get_playback_cache.cache_clear()


@dataclass(frozen=True)
class Proxy:
    """A real all-intra proxy (encode_proxy) and every one of its frames, decoded to rgb24."""

    name: str
    path: Path
    fps: Fraction
    frame_count: int
    width: int
    height: int
    frames: tuple[bytes, ...] = field(repr=False)


class Playback:
    """Rows, proxies in S3 and settings for one test; everything it changes is put back by the fixture."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.root = root
        self._saved = {key: os.environ.get(key) for key in SETTING_KEYS}
        self.use(root / "cache", shared=False)

    # -- settings -----------------------------------------------------------------------------------------
    def use(self, cache_dir: Path, *, shared: bool) -> Path:
        """Be a host whose playback cache is `cache_dir` (shared playback on or off)."""
        os.environ["PLAYBACK_CACHE_DIR"] = str(cache_dir)
        os.environ["PLAYBACK_SHARED"] = "true" if shared else "false"
        clear_caches()
        from heaters.settings import get_settings

        settings = get_settings()
        assert settings.playback_cache_dir == cache_dir and settings.playback_shared is shared
        return cache_dir

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        clear_caches()

    # -- rows ---------------------------------------------------------------------------------------------
    def upload(self, proxy: Proxy) -> str:
        from heaters.adapters import get_storage

        key = f"proxies/playback_test_{proxy.name}_{secrets.token_hex(6)}_proxy.mp4"
        get_storage().upload_file(proxy.path, key, content_type="video/mp4")
        return key

    def video(
        self, proxy: Proxy, *, key: str | None = None, upload: bool = True, frame_count: int | None = None
    ) -> int:
        """A source_videos row for the proxy (uploaded under a fresh key unless `upload=False`)."""
        if upload:
            key = self.upload(proxy)
        assert key is not None
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    text(
                        "INSERT INTO source_videos (title, proxy_filepath, fps_num, fps_den, frame_count, "
                        "duration_seconds, width, height, ingest_state, needs_splicing) VALUES "
                        "(:title, :key, :num, :den, :frames, :seconds, :w, :h, 'encoded', false) RETURNING id"
                    ),
                    {
                        "title": f"playback {proxy.name}",
                        "key": key,
                        "num": proxy.fps.numerator,
                        "den": proxy.fps.denominator,
                        "frames": frame_count or proxy.frame_count,
                        "seconds": float(proxy.frame_count / proxy.fps),
                        "w": proxy.width,
                        "h": proxy.height,
                    },
                ).scalar_one()
            )

    def bare_video(self) -> int:
        """A video that never got a proxy (no key, no fps)."""
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    text("INSERT INTO source_videos (title) VALUES ('no proxy') RETURNING id")
                ).scalar_one()
            )

    def clip(self, video_id: int, start: int, end: int) -> int:
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    text(
                        "INSERT INTO clips (source_video_id, clip_identifier, start_frame, end_frame) "
                        "VALUES (:v, :ident, :s, :e) RETURNING id"
                    ),
                    {"v": video_id, "ident": f"{video_id}_playback_{start}_{end}", "s": start, "e": end},
                ).scalar_one()
            )

    def request(self, *clip_ids: int) -> dict[int, Any]:
        from heaters.db import unit_of_work
        from heaters.playback import service

        with unit_of_work() as session:
            return service.request(session, list(clip_ids))

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(text("SELECT * FROM temp_clips ORDER BY id")).mappings()]

    def row(self, clip_id: int) -> dict[str, Any]:
        with self.engine.connect() as connection:
            found = (
                connection.execute(text("SELECT * FROM temp_clips WHERE clip_id = :c"), {"c": clip_id}).mappings().one()
            )
        return dict(found)

    def generate(self, clip_id: int) -> dict[str, Any]:
        """Ask for the clip as a page would, then run the worker's job in this process; the row afterwards."""
        from heaters.playback import generate

        self.request(clip_id)
        generate.generate(self.row(clip_id)["id"])
        return self.row(clip_id)

    def cache_file(self, row: dict[str, Any]) -> Path:
        from heaters.adapters import get_playback_cache

        return get_playback_cache().path(row["filename"])


class PathRecorder:
    """An ASGI wrapper that notes the decoded path of each request as the app receives it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def decode_frames(
    path: Path, *, width: int, height: int, seek: str | None = None, count: int | None = None
) -> list[bytes]:
    """Every decoded video frame of `path` as rgb24 bytes (or `count` frames from `-ss seek`)."""
    args = ["ffmpeg", "-nostdin", "-v", "error"]
    if seek is not None:
        args += ["-ss", seek]
    args += ["-i", str(path), "-map", "0:v:0"]
    if count is not None:
        args += ["-frames:v", str(count)]
    args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    data = run_tool(args, timeout=TIMEOUT).stdout
    size = width * height * 3
    assert len(data) % size == 0, f"{len(data)} bytes is not a whole number of {width}x{height} frames"
    return [data[i : i + size] for i in range(0, len(data), size)]


def video_stream(path: Path) -> dict:
    out = run_tool(
        [
            "ffprobe",
            "-v",
            "error",
            "-of",
            "json",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_streams",
            str(path),
        ],
        timeout=TIMEOUT,
    ).stdout_text
    return json.loads(out)["streams"][0]


def queued(client: Any, start: int = 0, queue: str = "temp_clips") -> list[Any]:
    """The messages waiting on a Dramatiq Redis queue from position `start`, oldest first.

    RedisBroker keeps a list of message ids (`dramatiq:<queue>`) and their bodies in a hash (`….msgs`).
    """
    import dramatiq

    ids = client.lrange(f"dramatiq:{queue}", start, -1)
    bodies = [client.hget(f"dramatiq:{queue}.msgs", message_id) for message_id in ids]
    return [dramatiq.Message.decode(body) for body in bodies if body is not None]


def waiting(client: Any, queue: str = "temp_clips") -> int:
    return int(client.llen(f"dramatiq:{queue}"))


def listing(directory: Path) -> list[str]:
    """Every entry of a directory, hidden `.part` files included; [] when it does not exist."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def asgi_request(app: Any, raw_path: bytes, *, cookie: str | None = None, method: str = "GET") -> RawResponse:
    """One request with exactly this raw path, decoded once as an ASGI server does (uvicorn: `unquote`).

    httpx (and so TestClient) removes `..` segments before sending, so traversal attempts go through here.
    """
    import anyio

    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await app(scope, receive, send)

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResponse(start["status"], {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}, body)
