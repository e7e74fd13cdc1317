"""What the worker is doing right now, for its log, its health endpoint and its watchdog.

A worker is either making progress or waiting for something it names (PostgreSQL, the
dead-letter topic) with the reason. Waiting is logged when it starts, every
`REMIND_EVERY_S` while it lasts, and when it ends, with how long it took.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("rapport.worker")

REMIND_EVERY_S = 30.0


@dataclass
class _Waiting:
    what: str
    reason: str
    since: float  # monotonic
    reminded: float  # monotonic
    attempts: int = 1


@dataclass
class Health:
    """Thread-safe: the batch pipeline writes it from a worker thread."""

    started: float = field(default_factory=time.monotonic)
    last_progress: float = field(default_factory=time.monotonic)
    last_progress_at: datetime | None = None
    projected: int = 0
    parked: int = 0
    retries: int = 0
    retries_by_dependency: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    last_error_at: datetime | None = None
    # Set once the consumer has joined its group and been given partitions (or none):
    # until then the worker is alive but not ready (`/readyz`).
    assigned: bool = False
    _waiting: _Waiting | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def waiting(self, what: str, reason: str, retry_in_s: float) -> None:
        """The worker cannot go on until `what` answers; it retries in `retry_in_s`."""
        now = time.monotonic()
        with self._lock:
            self.retries += 1
            self.retries_by_dependency[what] += 1
            self.last_error = f"{what}: {reason}"
            self.last_error_at = datetime.now(UTC)
            w = self._waiting
            if w is None or w.what != what:
                self._waiting = _Waiting(what, reason, now, now)
                log.warning("waiting for %s: %s (retrying in %.1fs)", what, reason, retry_in_s)
                return
            w.attempts += 1
            w.reason = reason
            if now - w.reminded >= REMIND_EVERY_S:
                w.reminded = now
                log.warning(
                    "still waiting for %s after %.0fs (%d attempts): %s",
                    what,
                    now - w.since,
                    w.attempts,
                    reason,
                )

    def progressed(self, projected: int = 0, parked: int = 0) -> None:
        """A batch was stored (or a record parked): the worker is not stuck."""
        now = time.monotonic()
        with self._lock:
            self.last_progress = now
            self.last_progress_at = datetime.now(UTC)
            self.projected += projected
            self.parked += parked
            w, self._waiting = self._waiting, None
        if w is not None:
            log.warning(
                "resumed after waiting %.1fs for %s (%d attempts)",
                now - w.since,
                w.what,
                w.attempts,
            )

    @property
    def ready(self) -> bool:
        """Joined its group and waiting for nothing: what `/readyz` answers."""
        return self.assigned and self._waiting is None

    @property
    def is_waiting(self) -> bool:
        return self._waiting is not None

    def waiting_seconds(self) -> float:
        """How long the current wait has lasted (0 when not waiting)."""
        w = self._waiting
        return time.monotonic() - w.since if w else 0.0

    def waiting_attempts(self) -> int:
        w = self._waiting
        return w.attempts if w else 0

    def seconds_since_progress(self) -> float:
        return time.monotonic() - self.last_progress

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            w = self._waiting
            return {
                "status": "waiting" if w else ("ok" if self.assigned else "starting"),
                "waiting_for": w.what if w else None,
                "reason": w.reason if w else None,
                "waiting_s": round(time.monotonic() - w.since, 1) if w else None,
                "seconds_since_progress": round(time.monotonic() - self.last_progress, 1),
                "last_progress_at": (
                    self.last_progress_at.isoformat() if self.last_progress_at else None
                ),
                "projected": self.projected,
                "parked": self.parked,
                "retries": self.retries,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
                "assigned": self.assigned,
            }
