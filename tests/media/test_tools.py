"""run_tool on real processes: exit codes, stderr tail, streaming, the wall-clock kill, missing binaries."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from heaters.errors import ConfigError, PermanentError
from heaters.media import tools
from heaters.media.tools import MediaToolError, MediaToolMissing, MediaToolTimeout, run_tool, which


def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody reaps yet (killed either way: a zombie runs no code)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    state = next(line for line in text.splitlines() if line.startswith("State:"))
    return "Z" in state.split()[1]


def _process_gone(pid: int, within: float = 2.0) -> bool:
    """SIGKILL is delivered asynchronously: allow a moment for a killed grandchild to actually die."""
    end = time.monotonic() + within
    while not _dead(pid):
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def _wait_for_file(path: Path, seconds: float = 5.0) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} was never written")


def test_success_returns_stdout_and_stderr_tail() -> None:
    result = run_tool(["sh", "-c", "echo out; echo warn >&2"], timeout=10)
    assert result.returncode == 0
    assert result.stdout == b"out\n"
    assert result.stdout_text == "out\n"
    assert result.stderr_tail == "warn"
    assert result.args[0] == "sh"


def test_nonzero_exit_raises_with_the_stderr_tail_in_the_error() -> None:
    with pytest.raises(MediaToolError) as caught:
        run_tool(["sh", "-c", "echo 'first line' >&2; echo 'Invalid data found' >&2; exit 3"], timeout=10)
    error = caught.value
    assert error.returncode == 3
    assert error.cmd == ["sh", "-c", "echo 'first line' >&2; echo 'Invalid data found' >&2; exit 3"]
    assert "Invalid data found" in error.stderr_tail
    assert "Invalid data found" in str(error)
    assert "exit code 3" in str(error)
    assert isinstance(error, PermanentError)


def test_stderr_tail_is_bounded_and_keeps_the_end() -> None:
    script = (
        'i=0; while [ $i -lt 3000 ]; do echo "noise line $i padding padding padding" >&2;'
        " i=$((i+1)); done; echo 'the real error' >&2; exit 1"
    )
    with pytest.raises(MediaToolError) as caught:
        run_tool(["sh", "-c", script], timeout=20)
    tail = caught.value.stderr_tail
    assert len(tail) <= tools.STDERR_TAIL_BYTES
    assert "noise line 0 " not in tail  # the start was dropped
    assert tail.endswith("the real error")


def test_stderr_lines_stream_in_order_and_consumed_lines_stay_out_of_the_tail() -> None:
    seen: list[str] = []

    def on_line(line: str) -> bool:
        seen.append(line)
        return line.startswith("progress=")

    result = run_tool(
        ["sh", "-c", "printf 'a\\rb\\nprogress=continue\\nc\\nprogress=end\\n' >&2"], timeout=10, on_stderr_line=on_line
    )
    assert seen == ["a", "b", "progress=continue", "c", "progress=end"]  # \r splits like \n
    assert result.stderr_tail == "a\nb\nc"


def test_timeout_kills_the_process_and_raises(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(MediaToolTimeout) as caught:
        run_tool(["sh", "-c", f"echo $$ > {pid_file}; echo 'still working' >&2; exec sleep 30"], timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 5
    assert _process_gone(int(_wait_for_file(pid_file)))
    assert caught.value.timeout == 0.5
    assert "still working" in caught.value.stderr_tail  # the tail survives the kill
    assert "time limit" in str(caught.value)
    assert isinstance(caught.value, MediaToolError)


def test_timeout_on_plain_sleep() -> None:
    started = time.monotonic()
    with pytest.raises(MediaToolTimeout):
        run_tool(["sleep", "30"], timeout=0.5)
    assert time.monotonic() - started < 5


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    child_pid = tmp_path / "child"
    with pytest.raises(MediaToolTimeout):
        run_tool(["sh", "-c", f"sleep 30 & echo $! > {child_pid}; wait"], timeout=0.5)
    assert _process_gone(int(_wait_for_file(child_pid)))


def test_a_descendant_holding_the_pipes_is_killed_after_the_leader_exits(tmp_path: Path) -> None:
    child_pid = tmp_path / "child"
    started = time.monotonic()
    result = run_tool(["sh", "-c", f"sleep 30 & echo $! > {child_pid}; echo done"], timeout=20)
    assert result.stdout_text == "done\n"  # the leader's success stands
    assert time.monotonic() - started < tools.EXIT_GRACE_SECONDS + 3
    assert _process_gone(int(_wait_for_file(child_pid)))


def test_a_failing_callback_stops_the_tool_and_propagates() -> None:
    def explode(line: str) -> None:
        raise RuntimeError(f"bad line {line!r}")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="bad line 'x'"):
        run_tool(["sh", "-c", "echo x >&2; sleep 30"], timeout=20, on_stderr_line=explode)
    assert time.monotonic() - started < 5


def test_stdout_is_capped() -> None:
    with pytest.raises(MediaToolError, match="stdout exceeded 1000 bytes"):
        run_tool(["head", "-c", "2000000", "/dev/zero"], timeout=10, max_stdout_bytes=1000)


def test_missing_binary_is_a_config_error() -> None:
    assert which("heaters-no-such-tool") is None
    with pytest.raises(MediaToolMissing) as caught:
        run_tool(["heaters-no-such-tool", "-version"], timeout=5)
    assert isinstance(caught.value, ConfigError)
    assert "heaters-no-such-tool" in str(caught.value)


def test_not_executable_file_is_reported(tmp_path: Path) -> None:
    script = tmp_path / "tool.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(MediaToolMissing):
        run_tool([str(script)], timeout=5)


def test_ffmpeg_and_ffprobe_are_installed() -> None:
    assert which("ffmpeg") and which("ffprobe")
    assert b"ffmpeg version" in run_tool(["ffmpeg", "-hide_banner", "-version"], timeout=10).stdout


def test_arguments_are_never_shell_interpreted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = run_tool(["echo", f"; touch {marker}", "$(id)"], timeout=5)
    assert result.stdout_text == f"; touch {marker} $(id)\n"
    assert not marker.exists()


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        run_tool([], timeout=1)
    with pytest.raises(ValueError):
        run_tool(["true"], timeout=0)


def test_a_niced_tool_runs_at_that_priority_and_others_do_not() -> None:
    """The archival master runs its FFmpeg this way, so review work on the same host gets the CPU first."""
    own = "import os; print(os.nice(0))"
    assert run_tool([sys.executable, "-c", own], timeout=30, niceness=19).stdout_text.strip() == "19"
    assert run_tool([sys.executable, "-c", own], timeout=30).stdout_text.strip() == str(os.nice(0))


def test_a_niced_tool_lowers_its_own_session_too() -> None:
    """Each tool has a session of its own; with autogroups the session's niceness is what other work sees."""
    if not Path("/proc/self/autogroup").exists():  # a kernel without autogroups: `nice` alone ranks the tool
        assert run_tool([sys.executable, "-c", "print(1)"], timeout=30, niceness=19).stdout_text.strip() == "1"
        return
    wait = (
        "import time\n"
        "deadline = time.monotonic() + 10\n"
        "while 'nice 19' not in (line := open('/proc/self/autogroup').read()) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print(line.split()[-1])"
    )
    assert run_tool([sys.executable, "-c", wait], timeout=30, niceness=19).stdout_text.strip() == "19"
    plain = "print(open('/proc/self/autogroup').read().split()[-1])"
    assert run_tool([sys.executable, "-c", plain], timeout=30).stdout_text.strip() == "0"
