"""Per-source rate limits: a token bucket of events per second.

A request takes as many tokens as it carries events. It is admitted when the bucket is not
in debt, and may drive it into debt (so a batch larger than one second's budget still gets
through once); later requests then wait until the debt is repaid. The average rate holds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def try_acquire(self, source: str, events: int, rate: float) -> float:
        """0 when admitted (tokens taken), else the seconds to wait before trying again."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(source)
            if bucket is None:
                bucket = self._buckets[source] = _Bucket(tokens=rate, updated=now)
            bucket.tokens = min(rate, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens <= 0:
                return max(-bucket.tokens / rate, 1 / rate)
            bucket.tokens -= events
            return 0.0


def retry_after_seconds(wait_s: float) -> int:
    """Retry-After is whole seconds; never 0, or a client would retry at once."""
    return max(1, math.ceil(wait_s))
