"""Running and stopping a group of child processes, leaving none behind: what `heaters worker` (production:
one Dramatiq process per queue, plus the scheduler) and `heaters up` (development: the web app and workers
next to the local servers) both use.

Every child is started in a session of its own, so its pid is its process group id; stopping a child
signals that whole group, which also reaches grandchildren (postgres backends, node under reflex), and
waits until no member is left. Linux only: process state is read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol, Self

from heaters.media.tools import DIE_WITH_PARENT

# ----------------------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of a live or zombie process, None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; reaps it first if it is our exited child (a zombie is not alive)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    state = _proc_stat(pid)
    return state is not None and state[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``: what must be gone after a stop."""
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            state = _proc_stat(int(entry.name))
            if state is not None and state[1] == pgid and state[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def exe_name(pid: int) -> str | None:
    """Basename of a process's executable, to avoid signalling an unrelated process that reused a pid."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name.removesuffix(" (deleted)")
    except OSError:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None


def stop_process_group(
    pid: int,
    *,
    timeout: float = 10.0,
    sig: int = signal.SIGTERM,
    popen: subprocess.Popen[Any] | None = None,
) -> bool:
    """Send ``sig`` to the group ``pid`` leads, wait until every member is gone, then SIGKILL the rest.

    Children are started with ``start_new_session=True`` so their pid is their group id; signalling the
    group also reaches grandchildren (postgres backends, node under reflex). If ``pid`` does not lead a
    group only ``pid`` itself is signalled. Returns True if SIGKILL was needed.
    """
    state = _proc_stat(pid)
    leads_group = state is not None and state[1] == pid

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if leads_group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)

    def remaining() -> bool:
        leader_alive = popen.poll() is None if popen is not None else pid_alive(pid)
        return leader_alive or (leads_group and bool(group_members(pid)))

    send(sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not remaining():
            return False
        time.sleep(0.05)
    send(signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while remaining() and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


# -------------------------------------------------------------------------------------- ProcessGroup


class Stoppable(Protocol):
    """What a ProcessGroup stops after its children (``heaters up`` passes its LocalStack)."""

    def stop(self) -> None: ...


class ProcessGroup:
    """A tiny supervisor: named children in their own process groups, output prefixed with the name.

    ``run()`` blocks until SIGINT/SIGTERM/SIGHUP or until any child exits, then stops every child
    (SIGTERM to its group, SIGKILL after ``stop_timeout``) and finally the stack, if one was given.
    Children get their own sessions so a terminal's Ctrl-C reaches only us and we stop them in order.
    """

    SUPERVISOR = "supervisor"  # the name on its own lines (docs/operations.md lists it)

    def __init__(
        self, stack: Stoppable | None = None, *, stop_timeout: float = 10.0, out: IO[str] | None = None
    ) -> None:
        self.stack = stack
        self.stop_timeout = stop_timeout
        self.out = out if out is not None else sys.stdout
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._readers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._force = threading.Event()
        self._signal: int | None = None
        self._stopping = False
        self._stopped = False
        self._leader_only: set[str] = set()

    # --- output
    def _emit(self, name: str, line: str) -> None:
        """Never raises: a closed stdout (`make run | head`, a dead terminal) must not stop the cleanup."""
        with self._lock:
            width = max([len(self.SUPERVISOR), *(len(n) for n in self.children)])
            with contextlib.suppress(OSError, ValueError):
                self.out.write(f"{name:<{width}} | {line}\n")
                self.out.flush()

    def emit(self, name: str, line: str) -> None:
        """Print a line of our own among the children's output."""
        self._emit(name, line)

    @property
    def stopping(self) -> bool:
        """True once a signal or a child's exit has asked everything to stop."""
        return self._wake.is_set()

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for raw in iter(stream.readline, b""):
                self._emit(name, raw.decode("utf-8", "replace").rstrip("\r\n"))

    # --- children
    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        inherit_env: bool = True,
        stop_leader_only: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start a child; ``env`` is added to ours (or replaces it with ``inherit_env=False``).

        ``stop_leader_only``: the graceful stop signals the child alone, not its process group, because it
        stops its own children. Dramatiq's main process forwards SIGTERM to its worker processes, and a worker
        process takes a second SIGTERM (the group's) as "kill now": its running jobs would die instead of
        finishing. The SIGKILL after ``stop_timeout`` still goes to the whole group.
        """
        if name in self.children:
            raise ValueError(f"a child named {name!r} already runs")
        if stop_leader_only:
            self._leader_only.add(name)
        child_env = {**(os.environ if inherit_env else {}), **(env or {})}
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        proc = subprocess.Popen(
            # If the supervisor itself is killed, its children go too (a graceful stop is ours to do).
            [*DIE_WITH_PARENT, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
        )
        with self._lock:
            self.children[name] = proc
        assert proc.stdout is not None
        reader = threading.Thread(target=self._pump, args=(name, proc.stdout), daemon=True, name=f"out-{name}")
        reader.start()
        self._readers.append(reader)
        self._emit(self.SUPERVISOR, f"started {name} (pid {proc.pid}): {' '.join(argv)}")
        return proc

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self._force.set()  # a second Ctrl-C: stop waiting politely
        self._signal = signum
        self._wake.set()

    def run(self, poll_interval: float = 0.2) -> int:
        """Supervise until a signal or a child's exit; returns 0 after a signal, else the child's code."""
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in handled:
                previous[signum] = signal.signal(signum, self._on_signal)
        code = 0
        try:
            while not self._wake.is_set():
                for name, proc in self.children.items():
                    returncode = proc.poll()
                    if returncode is not None:
                        self._emit(self.SUPERVISOR, f"{name} exited with code {returncode}; stopping everything")
                        code = returncode or 1
                        self._wake.set()
                        break
                self._wake.wait(poll_interval)
            if self._signal is not None:
                self._emit(self.SUPERVISOR, f"got {signal.Signals(self._signal).name}; stopping everything")
        finally:
            try:
                self.shutdown()
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)
        return code

    def _alive(self, proc: subprocess.Popen[bytes]) -> bool:
        return proc.poll() is None or bool(group_members(proc.pid))

    def _signal_group(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)

    def shutdown(self) -> None:
        """Stop every child (group SIGTERM, then SIGKILL after stop_timeout), then the stack. Idempotent."""
        if self._stopped:
            return
        self._stopping = True
        try:
            running = [(n, p) for n, p in reversed(self.children.items()) if self._alive(p)]
            for name, proc in running:
                self._emit(self.SUPERVISOR, f"stopping {name} (pid {proc.pid})")
                if name in self._leader_only:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(proc.pid, signal.SIGTERM)
                else:
                    self._signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while any(self._alive(p) for _, p in running) and time.monotonic() < deadline:
                if self._force.is_set():
                    break
                time.sleep(0.05)
            for name, proc in running:
                if self._alive(proc):
                    self._emit(self.SUPERVISOR, f"{name} did not stop in time; killing its process group")
                    self._signal_group(proc, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while any(self._alive(p) for _, p in running) and time.monotonic() < deadline:
                time.sleep(0.05)
            for reader in self._readers:
                reader.join(timeout=2.0)
            for proc in self.children.values():
                if proc.stdout is not None:
                    proc.stdout.close()
        finally:
            self._stopped = True
            if self.stack is not None:
                self._emit(self.SUPERVISOR, "stopping services")
                self.stack.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
