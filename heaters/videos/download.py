"""URL ingest: yt-dlp in a subprocess with a wall-clock timeout that kills it, and errors a person can read.

Why it looks like this (reference §3.5, §8, §11.1 #0 #17, §11.2 #23):
* one format strategy, best video + best audio with no quality cap (`bv*+ba/b`, merged to mp4): the
  original's fallbacks to `worst` and its 360p regressions are gone; the encode stage makes the proxy;
* certificates are checked and yt-dlp's own downloader is used (no aria2c, which is not installed);
* a fixed output name (`source.<ext>`) instead of the title, so the file is found without guessing and the
  title (from the info JSON) never touches the file system;
* `--ignore-config` so a stray ~/.config/yt-dlp cannot change what production does;
* `--no-mtime` so the file's age is the download's, which the disk-cleanup policy relies on;
* yt-dlp is the venv's copy, run as `python -c <shim>`: the shim only points stdout at stderr, because
  yt-dlp prints progress on stdout and `run_tool` streams stderr line by line (stdout is only returned at the
  end). Nothing else differs from `python -m yt_dlp`.

Errors: `UnsupportedUrl` and `SourceUnavailable` are permanent (retrying cannot help); `DownloadFailed` is
transient (network trouble, server errors, a timeout, an unexplained failure) so the caller retries it with
backoff up to its attempt cap. All of them carry yt-dlp's own `ERROR:` line, cleaned up, in the message.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from heaters.errors import ConfigError, HeatersError, PermanentError, TransientError
from heaters.media.tools import MediaToolError, MediaToolTimeout, run_tool

OUTPUT_STEM = "source"
INFO_JSON = f"{OUTPUT_STEM}.info.json"
MAX_URL_LENGTH = 4096
PROGRESS_INTERVAL_SECONDS = 1.0
PROGRESS_STEP_PERCENT = 1.0

# Runs yt-dlp's CLI exactly as `python -m yt_dlp` would, with stdout redirected to stderr (see above).
YTDLP_SHIM = "import os, sys; os.dup2(2, 1); from yt_dlp import main; sys.argv[0] = 'yt-dlp'; main()"

_PROGRESS = re.compile(r"^\[download\]\s+(?P<percent>\d+(?:\.\d+)?)%")
_FORMATS = re.compile(r"^\[info\] .*: Downloading \d+ format\(s\): (?P<formats>\S+)")
_DESTINATION = re.compile(r"^\[download\] Destination: ")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HTTP_STATUS = re.compile(r"HTTP Error (?P<status>\d{3})")

# Messages (from yt-dlp's extractors) that mean the video itself is gone or closed to us, for good.
_GONE = (
    "Video unavailable",
    "This video is unavailable",
    "This video has been removed",
    "Private video",
    "This video is private",
    "account associated with this video has been terminated",
    "not available in your country",
    "blocked it in your country",
    "Sign in to confirm your age",
    "members-only",
    "This live event will begin",
    "Premieres in",
    "does not exist",
    "has been deleted",
)
# Network-level trouble: worth another attempt later.
_NETWORK = (
    "Connection refused",
    "Connection reset",
    "timed out",
    "Timeout",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "No route to host",
    "Remote end closed",
    "IncompleteRead",
    "Connection aborted",
    "Unable to download",
    "Got error",
    "giving up after",
)
_PERMANENT_STATUS = {400, 401, 404, 405, 410, 451}


class DownloadError(HeatersError):
    """Base of every download failure; `detail` is yt-dlp's own explanation (may be empty)."""

    def __init__(self, message: str, *, url: str, detail: str = "") -> None:
        self.url = url
        self.detail = detail
        super().__init__(message)


class UnsupportedUrl(DownloadError, PermanentError):
    """Not an address Heaters can ingest: not http(s), or no video yt-dlp can find there."""


class SourceUnavailable(DownloadError, PermanentError):
    """The address is fine but the video is gone or closed to us (404, removed, private, geo-blocked)."""


class DownloadFailed(DownloadError, TransientError):
    """The download did not complete (network, server error, time limit, empty result): try again later."""


@dataclass(frozen=True)
class Downloaded:
    """The downloaded file and what yt-dlp told us about it."""

    path: Path
    title: str
    source_url: str
    extractor: str
    size_bytes: int


def validate_url(url: str) -> str:
    """The URL stripped of surrounding blanks, if it is an absolute http(s) URL with a host; else UnsupportedUrl."""
    text = (url or "").strip()
    shown = text if len(text) <= 200 else text[:200] + "..."
    if not text:
        raise UnsupportedUrl("Only http(s) URLs can be ingested: the address is empty.", url=text)
    if len(text) > MAX_URL_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise UnsupportedUrl(f"Only http(s) URLs can be ingested: {shown!r} is not a valid address.", url=text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise UnsupportedUrl(
            f"Only http(s) URLs can be ingested: {shown!r} is not a valid address.", url=text
        ) from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise UnsupportedUrl(f"Only http(s) URLs can be ingested: {shown!r}", url=text)
    return text


def ytdlp_args(url: str, out_dir: str | os.PathLike[str]) -> list[str]:
    """The whole yt-dlp argv (pure): best quality, one video, fixed output name, info JSON, parsable progress."""
    template = os.path.join(os.fspath(out_dir), f"{OUTPUT_STEM}.%(ext)s").replace("%(ext)s", "\0")
    template = template.replace("%", "%%").replace("\0", "%(ext)s")  # a '%' in the directory is literal
    return [
        sys.executable,
        "-c",
        YTDLP_SHIM,
        "--ignore-config",
        "--no-cache-dir",
        "-f",
        "bv*+ba/b",
        "--merge-output-format",
        "mp4",
        "--no-playlist",
        "--playlist-items",
        "1",
        "--write-info-json",
        "--restrict-filenames",
        "--no-mtime",
        "-o",
        template,
        "--retries",
        "3",
        "--fragment-retries",
        "5",
        "--socket-timeout",
        "60",
        "--newline",
        "--progress-delta",
        str(PROGRESS_INTERVAL_SECONDS),
        "--color",
        "no_color",
        "--",
        url,
    ]


class ProgressThrottle:
    """Forwards a rising percent to `callback` at most once per `interval` s and per `step` points; 100 always.

    Keeps progress writes (DB rows, events) bounded however fast or slow the tool reports.
    """

    def __init__(
        self,
        callback: Callable[[float], None] | None,
        *,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        step: float = PROGRESS_STEP_PERCENT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.callback = callback
        self.interval = interval
        self.step = step
        self.clock = clock
        self.last: float | None = None
        self._last_at = float("-inf")

    def __call__(self, percent: float) -> None:
        if self.callback is None:
            return
        percent = min(100.0, max(0.0, percent))
        if self.last is not None and percent <= self.last:
            return  # never backwards, never twice the same value
        now = self.clock()
        final = percent >= 100.0
        if final or self.last is None or (percent - self.last >= self.step and now - self._last_at >= self.interval):
            self.last, self._last_at = percent, now
            self.callback(percent)


class YtdlpProgress:
    """`run_tool` stderr callback: turns yt-dlp's `[download]  42.0%` lines into overall percent.

    A `bv*+ba` download fetches two files one after the other (each 0..100 %), so the number of formats
    (from the `[info] ... Downloading 2 format(s): 137+140` line) splits the scale into equal parts and each
    `Destination:` line starts the next part. Returns True for progress lines to keep them out of the
    error tail.
    """

    def __init__(self, on_percent: Callable[[float], None]) -> None:
        self.on_percent = on_percent
        self.parts = 1
        self.part = 0  # index of the file being downloaded; -1 before the first Destination line
        self._started = False
        self.percent = 0.0

    def __call__(self, line: str) -> bool:
        text = _ANSI.sub("", line).strip()
        if match := _FORMATS.match(text):
            self.parts = max(1, match["formats"].count("+") + 1)
            return False
        if _DESTINATION.match(text):
            if self._started:
                self.part = min(self.part + 1, self.parts - 1)
            self._started = True
            return False
        match = _PROGRESS.match(text)
        if match is None:
            return False
        part_percent = min(100.0, float(match["percent"]))
        overall = 100.0 * (self.part + part_percent / 100.0) / self.parts
        if overall > self.percent:
            self.percent = overall
            self.on_percent(overall)
        return True


def download(
    url: str, work_dir: Path, *, timeout: float, on_progress: Callable[[float], None] | None = None
) -> Downloaded:
    """Download the video at `url` into `work_dir` (created; owned by this video) within `timeout` seconds.

    A retry into the same directory resumes yt-dlp's partial files. Raises UnsupportedUrl /
    SourceUnavailable (permanent) or DownloadFailed (transient); a missing yt-dlp is a ConfigError.
    """
    url = validate_url(url)
    work_dir.mkdir(parents=True, exist_ok=True)
    throttle = ProgressThrottle(on_progress)
    try:
        run_tool(ytdlp_args(url, work_dir), timeout=timeout, on_stderr_line=YtdlpProgress(throttle))
    except MediaToolTimeout as exc:
        raise DownloadFailed(
            f"The download did not finish within its {exc.timeout:g} s time limit and was stopped "
            "(a slow or stalled connection).",
            url=url,
            detail=error_detail(exc.stderr_tail),
        ) from exc
    except MediaToolError as exc:
        raise classify_failure(url, exc.stderr_tail) from exc

    path = _result_file(work_dir)
    size = path.stat().st_size if path is not None else 0
    if path is None or size == 0:
        raise DownloadFailed("yt-dlp reported success but left no video file (or an empty one).", url=url)
    info = _read_info(work_dir / INFO_JSON)
    throttle(100.0)
    return Downloaded(
        path=path,
        title=title_from(info, url),
        source_url=url,
        extractor=str(info.get("extractor_key") or info.get("extractor") or "unknown"),
        size_bytes=size,
    )


def error_detail(stderr: str) -> str:
    """yt-dlp's last `ERROR:` line made readable: no prefix, no '[generic] id:' tag, no '(caused by ...)'."""
    lines = [_ANSI.sub("", line).strip() for line in stderr.splitlines()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    if not errors:
        if any("No module named" in line and "yt_dlp" in line for line in lines):
            return "No module named yt_dlp"
        return next((line for line in reversed(lines) if line), "")
    text = errors[-1].removeprefix("ERROR:").strip()
    text = re.sub(r"^\[[^\]]+\]\s+(?:[^:\s]+:\s+)?", "", text)  # "[generic] clip: " / "[youtube] abc: "
    text = re.sub(r"\s*\(caused by .*$", "", text)
    text = re.sub(r";\s*please report this issue.*$", "", text, flags=re.IGNORECASE)
    return text.strip().rstrip(";").strip()


def classify_failure(url: str, stderr: str) -> Exception:
    """Map a failed yt-dlp run to UnsupportedUrl / SourceUnavailable / DownloadFailed (or ConfigError)."""
    detail = error_detail(stderr)
    if "No module named" in detail and "yt_dlp" in detail:
        return ConfigError("yt-dlp is not installed in this Python environment (pip install yt-dlp).")
    if "Unsupported URL" in detail:
        return UnsupportedUrl(
            f"No downloadable video was found at {url}: the page is not a video or a site yt-dlp supports.",
            url=url,
            detail=detail,
        )
    status = _HTTP_STATUS.search(detail)
    code = int(status["status"]) if status else None
    if code in _PERMANENT_STATUS or (code is None and any(s.lower() in detail.lower() for s in _GONE)):
        return SourceUnavailable(f"The video is not available: {detail}", url=url, detail=detail)
    if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail.lower():
        return SourceUnavailable(
            f"The site's security certificate could not be verified, so nothing was downloaded: {detail}",
            url=url,
            detail=detail,
        )
    if code is not None or any(s.lower() in detail.lower() for s in _NETWORK):
        return DownloadFailed(f"The video could not be downloaded right now: {detail}", url=url, detail=detail)
    return DownloadFailed(f"The download failed: {detail or 'yt-dlp gave no reason'}", url=url, detail=detail)


def title_from(info: dict[str, object], url: str) -> str:
    """The title yt-dlp found, else the URL's host.

    yt-dlp fills a missing title with a placeholder ("generic video #127.0.0"); that counts as missing.
    (For a direct file URL the generic extractor's title is the file name without extension: kept.)
    """
    title = " ".join(str(info.get("title") or "").split())
    placeholder = f"{info.get('extractor') or ''} video #{info.get('id') or ''}"
    if not title or title == placeholder:
        return urlsplit(url).hostname or url
    return title


def _read_info(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _result_file(work_dir: Path) -> Path | None:
    """The merged/final `source.<ext>`: not the info JSON, not yt-dlp's partial or per-format files."""
    candidates = [
        p
        for p in work_dir.glob(f"{OUTPUT_STEM}.*")
        if p.is_file() and p.name.count(".") == 1 and p.suffix not in {".json", ".part", ".ytdl", ".temp"}
    ]
    return max(candidates, key=lambda p: p.stat().st_size, default=None)
