"""The one place Heaters starts a subprocess (ffmpeg, ffprobe, yt-dlp).

Every run gets an argv list (never a shell), a wall-clock timeout that SIGKILLs the whole process group
(children such as the ffmpeg that yt-dlp starts die too), a bounded stderr tail for error messages, and a
named exception instead of an exit code to forget (the original's timeouts never killed anything, §11.1 #17).

Error policy:
* ``MediaToolError`` (non-zero exit) is a ``PermanentError``: with a local input the same command fails the
  same way again. Callers whose failure may be the network (yt-dlp, probing a URL) catch it and re-raise a
  ``TransientError`` themselves; this module cannot tell the two apart.
* ``MediaToolTimeout`` subclasses ``MediaToolError`` and is therefore permanent too: the limits are generous,
  so an input that ran out of time will most likely run out again, and each attempt costs the whole limit.
* ``MediaToolMissing`` is a ``ConfigError``: the machine, not the input, is wrong; no retry of the job helps
  until the deployment is fixed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from heaters.errors import ConfigError, PermanentError

STDERR_TAIL_BYTES = 64 * 1024
MAX_STDOUT_BYTES = 64 * 1024 * 1024
EXIT_GRACE_SECONDS = 2.0
_MAX_LINE_BYTES = 64 * 1024
_READ_CHUNK = 64 * 1024

# A callback that returns True has consumed the line (e.g. an ffmpeg `-progress` record): it is kept out of
# the stderr tail so the tail still holds the tool's own messages when the run fails.
StderrCallback = Callable[[str], bool | None]


class MediaToolError(PermanentError):
    """A media tool exited non-zero; carries the command and the tail of its stderr."""

    def __init__(self, cmd: Sequence[str], returncode: int | None, stderr_tail: str, message: str = "") -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tool = Path(self.cmd[0]).name if self.cmd else "tool"
        detail = last_lines(stderr_tail, 5)
        text = message or f"{tool} failed with exit code {returncode}"
        super().__init__(f"{text}: {detail}" if detail else text)


class MediaToolTimeout(MediaToolError):
    """A media tool ran past its wall-clock limit; its whole process group was killed."""

    def __init__(self, cmd: Sequence[str], timeout: float, stderr_tail: str) -> None:
        self.timeout = timeout
        tool = Path(cmd[0]).name if cmd else "tool"
        super().__init__(cmd, None, stderr_tail, f"{tool} was killed after its {timeout:g} s time limit")


class MediaToolMissing(ConfigError):
    """A media tool is not installed (or not executable) on this machine."""

    def __init__(self, tool: str, reason: str = "was not found on PATH") -> None:
        self.tool = tool
        super().__init__(f"{tool} {reason}; install it (e.g. apt-get install ffmpeg) or fix PATH")


@dataclass(frozen=True)
class CompletedTool:
    """What a successful run left behind."""

    args: list[str]
    returncode: int
    stdout: bytes
    stderr_tail: str
    elapsed_seconds: float

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def which(tool: str) -> str | None:
    """Absolute path of `tool` on PATH (or `tool` itself if it is an executable path), else None."""
    return shutil.which(tool)


def require(tool: str) -> str:
    """Like `which`, but a missing tool is a `MediaToolMissing` naming it."""
    path = which(tool)
    if path is None:
        raise MediaToolMissing(tool)
    return path


def last_lines(text: str, count: int) -> str:
    """The last `count` non-blank lines of `text`, joined by ' | ' for one-line error messages."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:])


class _StderrTail:
    """Keeps the last `limit` bytes of stderr as whole lines, so memory stays bounded on chatty tools."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self._lines: deque[str] = deque()
        self._size = 0
        self._limit = limit

    def add(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        while self._size > self._limit and len(self._lines) > 1:
            self._size -= len(self._lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self._lines)[-self._limit :]


def _pump_stderr(
    stream: IO[bytes], tail: _StderrTail, on_line: StderrCallback | None, errors: list[BaseException]
) -> None:
    """Split stderr on \\n and \\r (ffmpeg ends stats lines with \\r) and hand each line on."""
    pending = b""
    try:
        while True:
            chunk = stream.read1(_READ_CHUNK) if hasattr(stream, "read1") else stream.read(_READ_CHUNK)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            if len(pending) > _MAX_LINE_BYTES:  # a "line" without end: cut it rather than grow forever
                lines.append(pending)
                pending = b""
            for raw in lines:
                _deliver(raw, tail, on_line, errors)
        if pending:
            _deliver(pending, tail, on_line, errors)
    except BaseException as exc:  # reported to the caller's thread
        errors.append(exc)
        _drain(stream)


def _deliver(raw: bytes, tail: _StderrTail, on_line: StderrCallback | None, errors: list[BaseException]) -> None:
    line = raw.decode("utf-8", errors="replace")
    consumed = False
    if on_line is not None and not errors:
        try:
            consumed = bool(on_line(line))
        except BaseException as exc:  # a broken callback must not leave the tool running unseen
            errors.append(exc)
    if not consumed and line.strip():
        tail.add(line)


def _pump_stdout(
    stream: IO[bytes],
    chunks: list[bytes],
    limit: int,
    errors: list[BaseException],
    sink: Callable[[bytes], None] | None = None,
) -> None:
    size = 0
    try:
        while True:
            chunk = stream.read1(_READ_CHUNK) if hasattr(stream, "read1") else stream.read(_READ_CHUNK)
            if not chunk:
                break
            if sink is not None:  # a stream (raw frames) handed on as it comes, never held
                sink(chunk)
                continue
            size += len(chunk)
            if size > limit:
                errors.append(OverflowError(f"stdout exceeded {limit} bytes"))
                _drain(stream)
                return
            chunks.append(chunk)
    except BaseException as exc:
        errors.append(exc)


def _drain(stream: IO[bytes]) -> None:
    """Keep reading so the child never blocks on a full pipe while we decide to kill it."""
    try:
        while stream.read(_READ_CHUNK):
            pass
    except (OSError, ValueError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group (it leads its own session, so the group id is its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# If the worker that started a tool dies (SIGKILL, OOM), the tool dies too instead of running on as an
# orphan in its own session. setpriv (util-linux) sets PR_SET_PDEATHSIG and execs: no preexec_fn, which
# is unsafe in a threaded worker.
_SETPRIV = shutil.which("setpriv") if sys.platform == "linux" else None
DIE_WITH_PARENT: list[str] = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []


def _nice(niceness: int) -> list[str]:
    if niceness <= 0:
        return []
    return [require("nice"), "-n", str(niceness)]  # coreutils; it execs, so the death signal still holds


def _lower_session(pid: int, niceness: int) -> None:
    """With autogroup scheduling (on by default in most Linux kernels) the CPU is shared between sessions
    first, and each tool runs in a session of its own: `nice` alone would rank it only against itself."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))
    except FileNotFoundError:  # no autogroup scheduling on this kernel: `nice` already ranks it against all
        return


def run_tool(
    args: Sequence[str],
    *,
    timeout: float,
    on_stderr_line: StderrCallback | None = None,
    cwd: str | os.PathLike[str] | None = None,
    max_stdout_bytes: int = MAX_STDOUT_BYTES,
    niceness: int = 0,
    on_stdout: Callable[[bytes], None] | None = None,
) -> CompletedTool:
    """Run `args` to completion within `timeout` seconds of wall-clock time, or kill it and raise.

    stdout is captured (ffprobe's JSON) up to `max_stdout_bytes`; stderr is streamed line by line to
    `on_stderr_line` (ffmpeg `-progress pipe:2`) and its last `STDERR_TAIL_BYTES` are kept for errors.
    `niceness` > 0 runs the tool at a lower CPU priority (`nice`), for work nobody waits on.
    `on_stdout` receives stdout as it arrives instead (no limit, nothing kept); if it raises, the tool is
    killed and the error raised here.
    """
    argv = [os.fspath(a) for a in args]
    if not argv:
        raise ValueError("run_tool needs a command")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    exe = require(argv[0])
    started = time.monotonic()
    deadline = started + timeout
    try:
        proc = subprocess.Popen(
            [*DIE_WITH_PARENT, *_nice(niceness), exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,  # own process group: one killpg reaches every descendant
        )
    except PermissionError as exc:
        raise MediaToolMissing(argv[0], f"is not executable ({exc.strerror})") from exc
    except FileNotFoundError as exc:
        raise MediaToolMissing(argv[0]) from exc
    if niceness > 0:
        _lower_session(proc.pid, niceness)

    assert proc.stdout is not None and proc.stderr is not None
    tail = _StderrTail()
    errors: list[BaseException] = []
    out_chunks: list[bytes] = []
    readers = [
        threading.Thread(target=_pump_stderr, args=(proc.stderr, tail, on_stderr_line, errors), daemon=True),
        threading.Thread(
            target=_pump_stdout, args=(proc.stdout, out_chunks, max_stdout_bytes, errors, on_stdout), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()

    timed_out = False
    exited_at: float | None = None
    try:
        # Wait for the child and for both pipes to close. A descendant that outlives the child and keeps
        # its pipes open gets EXIT_GRACE_SECONDS, then the group is killed; the child's exit code stands.
        while True:
            if errors:
                _kill_group(proc)
                break
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is None and now >= deadline:
                timed_out = True
                _kill_group(proc)
                break
            if exited_at is not None:
                if not any(r.is_alive() for r in readers):
                    break
                if now - exited_at >= EXIT_GRACE_SECONDS or now >= deadline:
                    _kill_group(proc)  # the group outlives its leader, so its id cannot be reused yet
                    break
            readers[0].join(timeout=0.05)
    except BaseException:
        _kill_group(proc)  # KeyboardInterrupt or a worker shutdown must not leave an orphan encoder
        raise
    finally:
        proc.wait()
        for reader, stream in zip(readers, (proc.stderr, proc.stdout), strict=True):
            reader.join(timeout=5)
            if not reader.is_alive():  # a pipe held by an escaped process stays with its daemon reader
                stream.close()

    elapsed = time.monotonic() - started
    if timed_out:
        raise MediaToolTimeout(argv, timeout, tail.text())
    if errors:
        error = errors[0]
        if isinstance(error, OverflowError):
            raise MediaToolError(argv, proc.returncode, tail.text(), str(error)) from error
        raise error
    if proc.returncode != 0:
        raise MediaToolError(argv, proc.returncode, tail.text())
    return CompletedTool(argv, proc.returncode, b"".join(out_chunks), tail.text(), elapsed)
