"""The store contract on PostgreSQL (the same cases run on the in-memory twin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.settings import Settings
from projections.postgres.store import make_engine
from projections.postgres.versions import PostgresVersions
from projections.store import ProjectionVersions
from tests.store_contract import *  # noqa: F403  (the contract's cases)

pytestmark = pytest.mark.integration


@pytest.fixture
def versions(rapport_settings: Settings) -> Iterator[ProjectionVersions]:
    engine = make_engine(rapport_settings.db_url)
    yield PostgresVersions(engine)
    engine.dispose()
