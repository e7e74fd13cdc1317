"""`rapport worker --processes N`: N worker processes in one Kafka consumer group.

Scale-out is Kafka's own: every member is an ordinary `rapport worker` joining the same
consumer group, and the group protocol shares the partitions among them (and moves a
member's partitions to the others when it goes). Nothing here schedules work. The stored
positions, locked in each batch's transaction, keep the result exactly once whichever
member holds a partition, before, during and after a rebalance.

This process only starts the members and ties their lives together, so a supervisor sees
one worker:
- member i keeps faust's data under STATE_DIR/worker/member-i and serves /healthz,
  /readyz and /metrics on RAPPORT_WORKER_HEALTH_PORT + i; only member 0 runs the
  population scorer (its advisory lock would make the others wait anyway);
- SIGTERM or SIGINT is passed to every member, which commits what it has and stops;
- a member that exits by itself (a stall, the database behind the log, a crash) takes the
  others down and its exit code becomes the group's, for the supervisor to restart all;
- a member outlives no group: each gets SIGKILL from the kernel when this process dies
  (PR_SET_PDEATHSIG), so a SIGKILLed group leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from infra.settings import Settings
from infra.worker_process import child_env

log = logging.getLogger("rapport.worker")

STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def member_data_dir(state_dir: Path, member: int | None) -> Path:
    """Where faust keeps a worker's local data: one directory per member of a group."""
    base = state_dir / "worker"
    return base if member is None else base / f"member-{member}"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # Not on Linux: a member then outlives a SIGKILLed group until its own stop.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def member_env(settings: Settings, member: int) -> dict[str, str]:
    extra: dict[str, str] = {}
    if settings.worker_health_port is not None:
        extra["RAPPORT_WORKER_HEALTH_PORT"] = str(settings.worker_health_port + member)
    if member > 0:
        extra["RAPPORT_SCORES_EVERY_S"] = "0"
    return child_env(settings, **extra)


def run_group(settings: Settings, processes: int, worker_args: Sequence[str]) -> int:
    """Run `processes` members with `worker_args` until they stop; the group's exit code."""
    members = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.cli",
                "worker",
                "--processes",
                "1",
                "--member",
                str(i),
                *worker_args,
            ],
            env=member_env(settings, i),
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        for i in range(processes)
    ]
    print(
        f"worker group: {processes} processes (pids {', '.join(str(m.pid) for m in members)})",
        file=sys.stderr,
        flush=True,
    )
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = 0
    while not stopping:
        exited = [m for m in members if m.poll() is not None]
        if exited:
            code = exited[0].returncode
            print(
                f"worker group: member pid {exited[0].pid} exited with code {code}: "
                "stopping the others",
                file=sys.stderr,
                flush=True,
            )
            code = code if code > 0 else 1  # killed by a signal: still a failure
            break
        time.sleep(0.2)
    _stop_all(members)
    return code


def _stop_all(members: Sequence[subprocess.Popen[bytes]]) -> None:
    for m in members:
        if m.poll() is None:
            m.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for m in members:
        try:
            m.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            m.kill()
            m.wait()
