from __future__ import annotations

from collector.ratelimit import RateLimiter, retry_after_seconds


def test_a_source_over_its_rate_waits_until_its_debt_is_repaid() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.try_acquire("web", 30, rate=10) == 0  # one big batch may borrow
    wait = limiter.try_acquire("web", 1, rate=10)
    assert wait == 2.0 and retry_after_seconds(wait) == 2
    assert limiter.try_acquire("other", 5, rate=10) == 0  # budgets are per source
    now[0] = 2.01
    assert limiter.try_acquire("web", 1, rate=10) == 0
