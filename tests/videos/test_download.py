"""URL ingest with the real yt-dlp against local servers: argv, URL checks, progress, every failure class."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from heaters.errors import PermanentError, TransientError
from heaters.media.probe import probe
from heaters.videos import download as dl
from heaters.videos.download import (
    DownloadFailed,
    ProgressThrottle,
    SourceUnavailable,
    UnsupportedUrl,
    YtdlpProgress,
    classify_failure,
    download,
    error_detail,
    title_from,
    validate_url,
    ytdlp_args,
)
from tests.media import synth

from .conftest import SilentServer, WebServer

# ---- pure: argv -------------------------------------------------------------------------------------------


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_ytdlp_args_best_quality_one_video_fixed_name(tmp_path: Path) -> None:
    args = ytdlp_args("https://example.com/watch?v=abc", tmp_path)
    assert args[:3] == [sys.executable, "-c", dl.YTDLP_SHIM]
    assert args[-2:] == ["--", "https://example.com/watch?v=abc"]
    assert _value(args, "-f") == "bv*+ba/b"  # no quality cap, no height filter
    assert not any("height" in a for a in args)
    assert _value(args, "--merge-output-format") == "mp4"
    assert _value(args, "-o") == f"{tmp_path}/source.%(ext)s"
    assert _value(args, "--playlist-items") == "1"
    assert _value(args, "--retries") == "3"
    assert _value(args, "--fragment-retries") == "5"
    assert _value(args, "--socket-timeout") == "60"
    for flag in (
        "--no-playlist",
        "--write-info-json",
        "--restrict-filenames",
        "--no-cache-dir",
        "--newline",
        "--ignore-config",
        "--no-mtime",
    ):
        assert flag in args


def test_ytdlp_args_check_certificates_and_use_no_external_downloader(tmp_path: Path) -> None:
    args = ytdlp_args("https://example.com/v", tmp_path)
    assert "--no-check-certificates" not in args and "--no-check-certificate" not in args
    assert not any("aria2c" in a or "--downloader" in a or "--external-downloader" in a for a in args)
    assert "--no-progress" not in args  # progress lines are what we parse


def test_ytdlp_args_percent_in_directory_is_literal(tmp_path: Path) -> None:
    out = tmp_path / "100%done"
    assert _value(ytdlp_args("https://example.com/v", out), "-o") == f"{tmp_path}/100%%done/source.%(ext)s"


# ---- pure: URL validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "http://127.0.0.1:8000/a.mp4",
        "HTTPS://Example.COM/x",
    ],
)
def test_validate_url_accepts_http_and_https(url: str) -> None:
    assert validate_url(f"  {url}\n") == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.mp4",
        "file:///etc/passwd",
        "/tmp/a.mp4",
        "example.com/video",
        "javascript:alert(1)",
        "http://",
        "https:///nohost",
        "http://exa mple.com/x",
        "http://example.com:99999/x",
        "",
    ],
)
def test_validate_url_rejects_everything_else_with_a_message(url: str) -> None:
    with pytest.raises(UnsupportedUrl, match="Only http\\(s\\) URLs can be ingested") as info:
        validate_url(url)
    assert isinstance(info.value, PermanentError) and not isinstance(info.value, TransientError)


# ---- pure: error messages and classes ---------------------------------------------------------------------

STDERR_404 = (
    "[generic] Extracting URL: http://h/missing.mp4\n"
    "ERROR: [generic] missing: Unable to download webpage: HTTP Error 404: File not found "
    "(caused by <HTTPError 404: File not found>)\n"
)


@pytest.mark.parametrize(
    ("stderr", "kind", "words"),
    [
        ("ERROR: Unsupported URL: http://h/page.html\n", UnsupportedUrl, "No downloadable video was found"),
        (STDERR_404, SourceUnavailable, "HTTP Error 404: File not found"),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 410: Gone (caused by <HTTPError 410>)",
            SourceUnavailable,
            "HTTP Error 410",
        ),
        (
            "ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
            SourceUnavailable,
            "Video unavailable",
        ),
        (
            "ERROR: [youtube] abc: Private video. Sign in if you've been granted access",
            SourceUnavailable,
            "Private video",
        ),
        (
            "ERROR: [generic] x: Unable to download webpage: HTTP Error 503: Service Unavailable (caused by <...>)",
            DownloadFailed,
            "HTTP Error 503",
        ),
        ("ERROR: [generic] x: Unable to download webpage: HTTP Error 429: Too Many Requests", DownloadFailed, "429"),
        (
            "ERROR: [generic] x: Unable to download webpage: [Errno 111] Connection refused (caused by Transport"
            "Error('[Errno 111] Connection refused'))",
            DownloadFailed,
            "Connection refused",
        ),
        ("ERROR: [download] Got error: The read operation timed out", DownloadFailed, "timed out"),
        (
            "ERROR: [generic] x: Unable to download webpage: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
            "failed: self-signed certificate (_ssl.c:1006) (caused by SSLError(...)); please report this issue on "
            "https://github.com/yt-dlp/yt-dlp/issues",
            SourceUnavailable,
            "certificate could not be verified",
        ),
        ("ERROR: Postprocessing: something odd happened", DownloadFailed, "something odd happened"),
    ],
)
def test_classify_failure(stderr: str, kind: type[Exception], words: str) -> None:
    error = classify_failure("http://h/x", stderr)
    assert type(error) is kind
    assert words in str(error)
    transient = isinstance(error, TransientError)
    assert transient != isinstance(error, PermanentError)  # every class is exactly one of the two


def test_error_detail_strips_the_noise() -> None:
    assert error_detail(STDERR_404) == "Unable to download webpage: HTTP Error 404: File not found"
    assert error_detail("WARNING: x\nERROR: [youtube] abc: Video unavailable\n") == "Video unavailable"
    assert error_detail("Traceback...\nboom\n") == "boom"
    assert error_detail("") == ""


def test_title_from_info_or_host() -> None:
    url = "http://cdn.example.com:8080/videos/holiday.mp4"
    assert title_from({"title": "  Our  holiday ", "extractor": "youtube", "id": "x"}, url) == "Our holiday"
    assert title_from({}, url) == "cdn.example.com"
    assert (
        title_from({"title": "generic video #127.0.0", "extractor": "generic", "id": "127.0.0"}, "http://127.0.0.1:5/")
        == "127.0.0.1"
    )


def test_progress_parser_spans_video_and_audio_parts() -> None:
    seen: list[float] = []
    parser = YtdlpProgress(seen.append)
    lines = [
        "[info] abc: Downloading 1 format(s): 137+140",
        "[download] Destination: /w/source.f137.mp4",
        "[download]  10.0% of  100.00MiB at  1.00MiB/s ETA 01:30",
        "[download] 100.0% of  100.00MiB at  1.00MiB/s ETA 00:00",
        "[download] 100% of  100.00MiB in 00:01:40 at 1.00MiB/s",
        "[download] Destination: /w/source.f140.m4a",
        "[download]  50.0% of   3.00MiB at  1.00MiB/s ETA 00:01",
        "[download] 100% of   3.00MiB in 00:00:03 at 1.00MiB/s",
        '[Merger] Merging formats into "/w/source.mp4"',
    ]
    consumed = [parser(line) for line in lines]
    assert seen == [5.0, 50.0, 75.0, 100.0]
    assert consumed == [False, False, True, True, True, False, True, True, False]  # progress kept out of tail


def test_progress_throttle_bounds_the_calls() -> None:
    now = [0.0]
    seen: list[float] = []
    throttle = ProgressThrottle(seen.append, interval=1.0, step=1.0, clock=lambda: now[0])
    for tick in range(200):  # 200 reports in 2 s, rising 0.5 % each
        now[0] = tick * 0.01
        throttle(tick * 0.5)
    throttle(40.0)  # backwards: ignored
    throttle(100.0)
    throttle(100.0)
    assert seen[0] == 0.0 and seen[-1] == 100.0
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert len(seen) <= 4  # at most one a second (plus the first and the final 100)
    ProgressThrottle(None)(50.0)  # no callback: nothing to do, no error


# ---- real yt-dlp against local servers ----------------------------------------------------------------------


def test_download_direct_file_with_progress_and_file_name_title(
    web_server: WebServer, tmp_path: Path, small_source: synth.SynthVideo
) -> None:
    seen: list[float] = []
    result = download(web_server.url("holiday.mp4"), tmp_path / "work", timeout=60, on_progress=seen.append)
    assert result.path == tmp_path / "work" / "source.mp4"
    assert result.path.read_bytes() == small_source.path.read_bytes()
    assert result.size_bytes == small_source.path.stat().st_size
    assert result.title == "holiday"  # the generic extractor's title of a direct file: its name
    assert result.extractor == "Generic"
    assert result.source_url == web_server.url("holiday.mp4")
    assert (tmp_path / "work" / "source.info.json").is_file()
    assert seen and seen[-1] == 100.0 and seen == sorted(seen) and all(0 <= p <= 100 for p in seen)
    assert probe(result.path, timeout=30).frame_count == small_source.frame_count
    assert time.time() - result.path.stat().st_mtime < 120  # --no-mtime: the file's age is the download's


def test_download_without_a_title_falls_back_to_the_host(web_server: WebServer, tmp_path: Path) -> None:
    # No file name in the URL: yt-dlp's generic extractor finds no title and writes a placeholder.
    result = download(web_server.url("?video=1"), tmp_path, timeout=60, on_progress=None)
    info = dl._read_info(tmp_path / dl.INFO_JSON)
    assert str(info["title"]).startswith("generic video #")
    assert result.title == "127.0.0.1"
    assert result.size_bytes > 0


def test_unreachable_host_is_transient_with_a_readable_message(closed_port: int, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed) as info:
        download(f"http://127.0.0.1:{closed_port}/video.mp4", tmp_path, timeout=60)
    assert isinstance(info.value, TransientError)
    assert str(info.value) == (
        "The video could not be downloaded right now: Unable to download webpage: [Errno 111] Connection refused"
    )


def test_html_page_without_video_is_an_unsupported_url(web_server: WebServer, tmp_path: Path) -> None:
    url = web_server.url("page.html")
    with pytest.raises(UnsupportedUrl, match="No downloadable video was found at") as info:
        download(url, tmp_path, timeout=60)
    assert info.value.detail == f"Unsupported URL: {url}"
    assert not list(tmp_path.glob("source.*"))


def test_missing_file_is_permanently_unavailable(web_server: WebServer, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="HTTP Error 404"):
        download(web_server.url("gone.mp4"), tmp_path, timeout=60)


def test_server_error_is_transient(web_server: WebServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadFailed, match="HTTP Error 503") as info:
        download(web_server.url("status/503"), tmp_path, timeout=60)
    assert not isinstance(info.value, PermanentError)


def test_non_http_url_never_reaches_yt_dlp(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedUrl, match="Only http\\(s\\) URLs can be ingested: 'file:///etc/passwd'"):
        download("file:///etc/passwd", tmp_path, timeout=60)
    assert not tmp_path.joinpath("source.info.json").exists()


def test_timeout_kills_yt_dlp(silent_server: SilentServer, tmp_path: Path) -> None:
    started = time.monotonic()
    # 5 s: yt-dlp itself takes a few seconds to start on a loaded 2-core machine, before it connects.
    with pytest.raises(DownloadFailed, match="did not finish within its 5 s time limit") as info:
        download(silent_server.url("slow.mp4"), tmp_path, timeout=5)
    elapsed = time.monotonic() - started
    assert 5 <= elapsed < 15
    assert isinstance(info.value, TransientError)
    assert silent_server.accepted, "yt-dlp never connected, so the timeout proved nothing"
    # The killed process's socket is closed by the kernel at once: the server sees the hang-up.
    assert silent_server.wait_closed(len(silent_server.accepted), timeout=3)
