"""ProcessGroup, the supervisor of `heaters worker` and `heaters up`: children in their own process groups,
output prefixed with their name, and no orphan left after a signal or a child's death."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from heaters.devstack.service import free_port
from heaters.supervisor import ProcessGroup, pid_alive
from tests.fixtures.processes import assert_gone

REPO = Path(__file__).resolve().parents[1]


# `heaters up` in small: a LocalStack (only Redis, the cheapest real service) and three children.
SUPERVISOR = textwrap.dedent(
    """
    import sys
    from heaters.devstack.service import free_port
    from heaters.devstack.stack import LocalStack
    from heaters.supervisor import ProcessGroup

    timeout, marker, root = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    external = {
        "DATABASE_URL": "postgresql://db.example/x",
        "S3_ENDPOINT_URL": "https://s3.example",
        "S3_BUCKET": "b",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    stack = LocalStack(root, external=external, default_ports={"redis": free_port()}, persist=False)
    env = stack.start()
    group = ProcessGroup(stack, stop_timeout=timeout)
    group.start("sleeper", ["sleep", marker])
    shell = "echo $REDIS_URL; sleep " + marker + " & echo shell-ready; wait"
    group.start("shell", ["sh", "-c", shell], env=env)
    group.start("stubborn", ["sh", "-c", "trap '' TERM; echo stubborn-ready; sleep " + marker])
    sys.exit(group.run())
    """
)


def _drain(lines: queue.Queue[str]) -> list[str]:
    drained = []
    with contextlib.suppress(queue.Empty):
        while True:
            drained.append(lines.get_nowait())
    return drained


def _marked_processes(marker: str, parent: int) -> list[str]:
    """ps -ef lines of the supervisor's descendants (they carry ``marker``), the supervisor excluded."""
    # ww: without it ps cuts lines at 80 columns when its output is not a terminal
    ps = subprocess.run(["ps", "-efww"], capture_output=True, text=True, check=True).stdout
    return [
        line for line in ps.splitlines() if marker in line and "ps -efww" not in line and line.split()[1] != str(parent)
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_process_group_leaves_no_orphans_on_signal(signum: int, tmp_path: Path) -> None:
    marker = str(900000 + free_port())  # a unique sleep duration to find our processes in ps -ef
    parent = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, "1.0", marker, str(tmp_path / "data")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert parent.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump(stream: IO[str]) -> None:  # a thread: select() on a buffered pipe misses buffered lines
        for line in stream:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, args=(parent.stdout,))
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while not {"shell-ready", "stubborn-ready"} <= {line.split("| ")[-1] for line in seen}:
            assert time.monotonic() < deadline and parent.poll() is None, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        redis_pid = int((tmp_path / "data" / "redis" / "redis.pid").read_text())
        assert pid_alive(redis_pid)
        # env + name prefix, padded to the longest name ("supervisor")
        assert any(re.match(r"shell +\| redis://127\.0\.0\.1:", line) for line in seen), seen
        # 3 children + the sleep each shell forks (just after it printed "ready")
        while len(_marked_processes(marker, parent.pid)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_marked_processes(marker, parent.pid)) == 5

        parent.send_signal(signum)  # what Ctrl-C does to `make run`
        parent.wait(timeout=20)
    finally:
        if parent.poll() is None:  # a failed assertion above: let the supervisor clean up anyway
            parent.terminate()
            parent.wait(timeout=20)
        reader.join(timeout=5)
    output = "\n".join(seen + _drain(lines))
    assert parent.returncode == 0, output
    assert "did not stop in time" in output  # the TERM-ignoring child was SIGKILLed
    assert _marked_processes(marker, parent.pid) == []
    assert_gone(redis_pid)
    assert not (tmp_path / "data" / "stack.env").exists()


def test_process_group_stops_everything_when_a_child_dies() -> None:
    class FakeStack:
        stopped = False

        def stop(self) -> None:
            FakeStack.stopped = True

    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    group = ProcessGroup(FakeStack(), stop_timeout=5, out=Sink())  # type: ignore[arg-type]
    sleeper = group.start("sleeper", ["sleep", "300"])
    group.start("crasher", ["sh", "-c", "echo about to fail; sleep 0.3; exit 7"])
    assert group.run(poll_interval=0.05) == 7
    assert_gone(sleeper.pid)
    assert FakeStack.stopped
    assert any(re.match(r"crasher +\| about to fail", line) for line in lines), lines


# A child that stops its own children (as Dramatiq's main process does): it forwards SIGTERM to a
# grandchild in its process group. The grandchild records who sent it SIGTERM (sigwaitinfo's si_pid).
FORWARDER = textwrap.dedent(
    """
    import os, signal, sys, time
    record = sys.argv[1]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    child = os.fork()
    if child == 0:
        info = signal.sigwaitinfo({signal.SIGTERM})
        with open(record, "w") as out:
            out.write(str(info.si_pid))
        os._exit(0)
    def forward(signum, frame):
        os.kill(child, signal.SIGTERM)
        os.waitpid(child, 0)
        sys.exit(0)
    signal.signal(signal.SIGTERM, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    while True:
        time.sleep(0.1)
    """
)


@pytest.mark.parametrize("leader_only", [True, False])
def test_a_child_that_stops_its_own_children_is_signalled_alone(leader_only: bool, tmp_path: Path) -> None:
    record = tmp_path / "sender"
    group = ProcessGroup(stop_timeout=10.0)
    proc = group.start("forwarder", [sys.executable, "-c", FORWARDER, str(record)], stop_leader_only=leader_only)
    _wait_for_grandchild(proc.pid)  # it inherits SIGTERM blocked: a signal before its sigwaitinfo waits
    group.shutdown()
    sender = int(record.read_text())
    if leader_only:  # the grandchild heard only its parent's forwarded SIGTERM: one stop, not two
        assert sender == proc.pid
    else:  # the whole group heard ours first: a Dramatiq worker process would take the forward as "kill"
        assert sender == os.getpid()


def _wait_for_grandchild(pid: int) -> None:
    deadline = time.monotonic() + 30
    while not subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, "the forwarder's child never started"
        time.sleep(0.05)
