"""Topics, databases and consumer groups made for one run (a benchmark, a test) on shared
services, all removed when the run ends, whatever happened."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import sqlalchemy as sa

from infra.services import new_topic
from infra.settings import Settings
from streams import kafka_clients


class Scratch:
    def __init__(self, base: Settings, state_dir: Path, *, prefix: str = "bench") -> None:
        self.base = base
        self.prefix = prefix
        self.run_id = uuid.uuid4().hex[:8]
        self.state_dir = state_dir
        self._admin = kafka_clients.admin(base.bootstrap, request_timeout_ms=30_000)
        self._server = sa.create_engine(
            base.db_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True
        )
        self._topics: set[str] = set()
        self._databases: set[str] = set()
        self._groups: set[str] = set()

    # -- Kafka ----------------------------------------------------------------------------
    def topic(self, label: str) -> str:
        """A new, empty topic (and its DLQ), partitioned and replicated as configured."""
        name = f"{self.prefix}.{self.run_id}.{label}"
        self._admin.create_topics(
            [new_topic(self.base, n) for n in (name, self.dead_letters_of(name))]
        )
        self._topics.update((name, self.dead_letters_of(name)))
        return name

    @staticmethod
    def dead_letters_of(topic: str) -> str:
        return f"{topic}.dlq"

    def drop_topic(self, name: str) -> None:
        names = [n for n in (name, self.dead_letters_of(name)) if n in self._topics]
        if names:
            self._admin.delete_topics(names)
            self._topics.difference_update(names)

    # -- PostgreSQL -----------------------------------------------------------------------
    def database(self, label: str) -> str:
        """The URL of a new, empty database on the configured server."""
        name = f"{self.prefix}_{self.run_id}_{label}"
        with self._server.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self._databases.add(name)
        return sa.make_url(self.base.db_url).set(database=name).render_as_string(False)

    def drop_database(self, url: str) -> None:
        name = sa.make_url(url).database
        if name in self._databases:
            with self._server.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self._databases.discard(name)

    def settings(self, topic: str, database_url: str, label: str) -> Settings:
        """Settings for a child `rapport` process: this topic, database and a fresh group."""
        state = self.state_dir / label
        group = f"{self.prefix}-{self.run_id}-{label}"
        self._groups.add(group)
        (state / "worker").mkdir(parents=True, exist_ok=True)
        return self.base.model_copy(
            update={
                "kafka_bootstrap": self.base.bootstrap,
                "database_url": database_url,
                "topic": topic,
                "dlq_topic": self.dead_letters_of(topic),
                "consumer_group": group,
                "state_dir": state,
            }
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._topics:
                self._admin.delete_topics(sorted(self._topics))
        with contextlib.suppress(Exception):
            if self._groups:
                self._admin.delete_groups(sorted(self._groups))
        self._admin.close()
        for name in sorted(self._databases):
            with contextlib.suppress(Exception), self._server.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._server.dispose()
