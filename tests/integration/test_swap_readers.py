"""A swap never aborts a reader, whatever order the reader takes the views in.

A read API request resolves an identifier through `rapport.identities` and then reads
`rapport.timeline` in the same transaction; the swap replaces every view. Were the swap to
wait on one view while holding another, the two would deadlock and PostgreSQL would abort
one of them.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from infra.settings import Settings
from projections.postgres.store import make_engine
from projections.postgres.versions import PostgresVersions

pytestmark = pytest.mark.integration


def test_a_reader_holding_one_view_and_reading_another_outlives_a_swap(
    rapport_settings: Settings,
) -> None:
    engine = make_engine(rapport_settings.db_url)
    versions = PostgresVersions(engine)
    live = versions.ensure_active()
    versions.prepare("core_v2")
    swapped: list[str | None] = []
    failures: list[BaseException] = []

    def swap() -> None:
        try:
            swapped.append(versions.activate("core_v2"))
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    with engine.connect() as reader:
        reader.execute(sa.text("SELECT count(*) FROM rapport.identities")).scalar_one()
        swapper = threading.Thread(target=swap)
        swapper.start()
        time.sleep(0.5)  # the swap is now waiting for the view this reader holds
        events = reader.execute(sa.text("SELECT count(*) FROM rapport.timeline")).scalar_one()
        time.sleep(1.5)  # past PostgreSQL's deadlock check, still holding both views
        reader.rollback()
    swapper.join(30)

    assert events == 0
    assert failures == [] and swapped == [live]
    with engine.connect() as conn:
        pointed = conn.execute(
            sa.text(
                "SELECT definition FROM pg_views "
                "WHERE schemaname = 'rapport' AND viewname = 'timeline'"
            )
        ).scalar_one()
    assert "core_v2.timeline" in pointed
    engine.dispose()
