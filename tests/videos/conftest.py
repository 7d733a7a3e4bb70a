"""Local stand-ins for the internet (a web server, a closed port, a server that never answers) and media.

Everything listens on 127.0.0.1 inside the test process (threads), and is shut down by its fixture.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path

import pytest

from heaters.media.tools import run_tool
from tests.media import synth

# Scene lengths in frames (25 fps): cuts at 37, 66, 107; 140 frames = 5.6 s.
SCENES = (37, 29, 41, 33)
PAGE = "<!doctype html><html><head><title>Holiday plans</title></head><body><p>No video here.</p></body></html>"


@pytest.fixture(scope="session")
def videos_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos_media")


@pytest.fixture(scope="session")
def small_source(videos_media: Path) -> synth.SynthVideo:
    """A long-GOP H.264 + AAC mp4 with hard cuts, like a small download (moov at the end)."""
    return synth.make_cut_video(
        videos_media / "small.mp4", fps=Fraction(25), scene_frames=SCENES, width=320, height=180
    )


@pytest.fixture(scope="session")
def truncated_faststart(videos_media: Path, small_source: synth.SynthVideo) -> Path:
    """The first half of a FASTSTART mp4: the index is complete, half the media data is missing."""
    faststart = videos_media / "faststart.mp4"
    run_tool(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(small_source.path),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(faststart),
        ],
        timeout=60,
    )
    data = faststart.read_bytes()
    assert data[4:8] == b"ftyp" and b"moov" in data[: len(data) // 4], "moov must sit at the front"
    truncated = videos_media / "truncated_faststart.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    return truncated


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, /status/<code> answering that HTTP status, and /?video (the mp4 at a URL with no file
    name, so yt-dlp finds no title); no request logging."""

    def do_GET(self) -> None:
        if self.path.startswith("/status/"):
            self.send_error(int(self.path.rsplit("/", 1)[-1]))
            return
        if self.path.startswith("/?video"):
            self.path = "/holiday.mp4"
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class WebServer:
    root: Path
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"


@pytest.fixture(scope="session")
def web_server(videos_media: Path, small_source: synth.SynthVideo) -> Iterator[WebServer]:
    """Serves a small mp4 (also at a URL without file name), an HTML page and error statuses."""
    root = videos_media / "www"
    root.mkdir()
    shutil.copyfile(small_source.path, root / "holiday.mp4")
    (root / "page.html").write_text(PAGE)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebServer(root, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@dataclass
class SilentServer:
    """Accepts connections and never answers; records when each client hangs up."""

    port: int
    accepted: list[float] = field(default_factory=list)
    closed: list[float] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def wait_closed(self, count: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.closed) >= count:
                return True
            time.sleep(0.05)
        return len(self.closed) >= count


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    state = SilentServer(listener.getsockname()[1])
    stop = threading.Event()
    clients: list[socket.socket] = []

    def hold(conn: socket.socket) -> None:
        conn.settimeout(0.2)
        while not stop.is_set():
            try:
                if not conn.recv(4096):  # EOF: the client (yt-dlp) is gone
                    state.closed.append(time.monotonic())
                    return
            except TimeoutError:
                continue
            except OSError:
                state.closed.append(time.monotonic())
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            clients.append(conn)
            state.accepted.append(time.monotonic())
            threading.Thread(target=hold, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in clients:
            conn.close()
