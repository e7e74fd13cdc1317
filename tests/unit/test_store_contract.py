"""The store contract on the in-memory twin (the same cases run on PostgreSQL)."""

from __future__ import annotations

import pytest

from projections.memory import InMemoryVersions
from projections.store import ProjectionVersions
from tests.store_contract import *  # noqa: F403  (the contract's cases)


@pytest.fixture
def versions() -> ProjectionVersions:
    return InMemoryVersions()
