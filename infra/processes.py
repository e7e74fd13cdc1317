"""Detached server processes tracked by pid files, so a later command can find and stop them."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import psutil


def read_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process still runs, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.NoSuchProcess:
        return None
    return pid


def spawn(
    argv: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> int:
    """Start `argv` in its own session (it outlives this command) and record its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    pid_file.write_text(str(process.pid))
    return process.pid


def terminate(pid: int, *, timeout: float = 30.0) -> None:
    """SIGTERM, wait up to `timeout` for a clean exit, then SIGKILL."""
    terminate_all([pid], timeout=timeout)


def terminate_all(pids: Iterable[int], *, timeout: float = 30.0) -> None:
    """`terminate` several processes at once: all signalled first, then waited for together
    (a cluster's nodes each wait, while stopping, for the quorum the others make up)."""
    processes = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            process.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
        processes.append(process)
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=10)


def wait_until(
    ready: Callable[[], bool], *, timeout: float, interval: float = 0.2, alive: Callable[[], bool]
) -> bool:
    """Poll `ready` until it is true (True), `alive` turns false or time runs out (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if not alive():
            return False
        time.sleep(interval)
    return ready()
