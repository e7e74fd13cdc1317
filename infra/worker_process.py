"""`rapport worker` as a child process, as the demo, the tests and the benchmark run it.

Started with exactly the given settings in its environment and its output in a log file;
stopped with SIGTERM so it commits what it has (SIGKILL if it does not stop in time); and
checked for an early exit, which names the last lines of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from infra.errors import InfraError
from infra.settings import Settings

STOP_TIMEOUT_S = 30.0


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This environment without any RAPPORT_* of its own, plus `settings` and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPPORT_")}
    return {**env, **settings.as_env(), **extra}


class WorkerProcess:
    def __init__(
        self,
        settings: Settings,
        log: Path,
        *args: str,
        command: list[str] | None = None,  # default: `rapport worker ARGS`
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.settings = settings
        self.log = log
        self.command = command or [sys.executable, "-m", "infra.cli", "worker", *args]
        self.stop_timeout_s = stop_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self.started = 0.0  # time.monotonic() at start

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise InfraError("the worker has not been started")
        return self._process

    def start(self) -> Self:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self._process = subprocess.Popen(
                self.command,
                env=child_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started = time.monotonic()
        return self

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def check_alive(self) -> None:
        """Raise if the worker has exited: its exit code and the end of its log."""
        process = self._process
        if process is not None and process.poll() is not None:
            raise self.exited_error(process.returncode)

    def exited_error(self, code: int) -> Exception:
        tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
        return InfraError(
            f"the worker exited with code {code}: {' | '.join(tail) or 'no output'} "
            f"(log: {self.log})"
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
