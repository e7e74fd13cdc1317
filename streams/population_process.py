"""The population scorer (projections/postgres/population.py) in a process of its own.

The worker starts it beside its stream. In the worker's own process a cycle's Python work
(thousands of customers rescored during a drain) would hold the GIL while the batch
pipeline, which waits on PostgreSQL between many short round trips, queued behind it for
every reacquisition. Apart, the two share only the machine's cores.

A cycle that took d seconds waits max(every_s, 9d) before the next: at most a tenth of the
time, so a drain (where every customer changes between two cycles) is not starved by
rescoring them all again and again. The process ends when asked, or when the worker that
started it is gone (a SIGKILLed worker cannot ask).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from datetime import date
from multiprocessing.synchronize import Event
from typing import Any

from projections.contact_policy import DEFAULT_CONTACT_RULES, ContactRules
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters

log = logging.getLogger("rapport.population")

BACKOFF = 9  # a cycle that took d waits at least 9d


@dataclass(frozen=True)
class ScorerConfig:
    database_url: str
    schema: str | None  # None: the active version
    every_s: float = 2.0
    params: ScoreParameters = DEFAULT_PARAMETERS
    as_of_day: date | None = None  # None: today
    contact_rules: ContactRules = DEFAULT_CONTACT_RULES
    role: str | None = None  # the database role it writes as (the worker's)


def run_scorer(config: ScorerConfig, parent_pid: int, stop: Event) -> None:
    """The child's loop (module docstring)."""
    from projections.postgres.population import PopulationScorer
    from projections.postgres.store import make_engine

    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s] [%(process)d] %(message)s")
    engine = make_engine(config.database_url, pool_size=1, role=config.role)
    scorer = PopulationScorer(
        engine,
        config.schema,
        params=config.params,
        as_of_day=config.as_of_day,
        contact_rules=config.contact_rules,
    )
    try:
        while os.getppid() == parent_pid and not stop.is_set():
            began = time.monotonic()
            try:
                scorer.run_once()
            except Exception as error:  # PostgreSQL away: the next cycle catches up
                log.warning("population scorer: %s", str(error).splitlines()[0])
            stop.wait(max(config.every_s, BACKOFF * (time.monotonic() - began)))
    finally:
        engine.dispose()


class ScorerProcess:
    def __init__(self, config: ScorerConfig) -> None:
        self.config = config
        self._context: Any = multiprocessing.get_context("spawn")
        self._stop: Event = self._context.Event()
        self._process: Any = None

    def start(self) -> None:
        self._process = self._context.Process(
            target=run_scorer,
            args=(self.config, os.getpid(), self._stop),
            name="rapport-population-scorer",
            daemon=True,
        )
        self._process.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the scorer to stop after its cycle (rolled back if cut short: a cycle is one
        transaction), and wait for it."""
        if self._process is None:
            return
        self._stop.set()
        self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout_s)
        self._process = None
