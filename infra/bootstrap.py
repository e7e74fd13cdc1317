"""The composition root: turn Settings into the engines, publishers and workers others use."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from infra import services
from infra.settings import Settings
from infra.worker_group import member_data_dir
from privacy.erasure import ErasureReport, erase_customer
from privacy.gate import SuppressionGate
from privacy.keystore import SCHEMA as KEYS_SCHEMA
from privacy.keystore import PostgresKeyStore
from privacy.sealing import Sealer
from privacy.secrets import MasterSecrets
from privacy.unsealing import UnsealerFactory
from producers import Publisher, PublisherConfig
from producers.errors import PublishError
from projections.contact_policy import ContactRules
from projections.engagement import EngagementParameters
from projections.identity import IdentityRules
from projections.postgres import roles, views
from projections.postgres.store import make_engine
from projections.postgres.versions import PostgresVersions
from projections.scores import ScoreParameters
from projections.value import RfmWeights
from streams.rebuild import Rebuilder
from streams.worker import WorkerConfig

if TYPE_CHECKING:  # FastAPI and faust are paid for only by the commands that serve them
    import faust
    from fastapi import FastAPI

    from collector.sources import PostgresSources
    from readapi.addresses import PageAddresses
    from readapi.keys import PostgresApiKeys

PSEUDONYM_KEY_FILE = "pseudonym.key"
OPERATIONS_STATUS_TTL_S = 5.0
OPERATIONS_STATUS_WAIT_S = 30.0  # the first request waits this long for another's collect


def require_services(settings: Settings) -> None:
    """Fail with one clear line if a service is unreachable; create missing topics."""
    services.require(settings)
    services.ensure_topics(settings)


def engine(settings: Settings, **options: Any) -> sa.Engine:
    services.require_database_only(settings)
    return make_engine(settings.db_url, **options)


def publisher(settings: Settings, **options: Any) -> Publisher:
    """The SDK publisher to the touchpoint topic, sealing personal fields; options as in
    PublisherConfig."""
    options.setdefault("sealer", sealer(settings))
    return Publisher(settings.bootstrap, settings.topic, **options)


# -- privacy (docs/privacy.md) ---------------------------------------------------------------
def master_secrets(settings: Settings) -> MasterSecrets:
    return MasterSecrets.load(encoded=settings.master_key, path=settings.master_key_path)


def key_store(settings: Settings, db: sa.Engine | None = None) -> PostgresKeyStore:
    """The key store (its tables created when missing)."""
    store = PostgresKeyStore(
        db or engine(settings, pool_size=2), master_secrets(settings).wrapping_key
    )
    store.create_schema()
    return store


def sealer(settings: Settings) -> Sealer:
    return Sealer(
        key_store(settings), master_secrets(settings).pepper, rules=identity_rules(settings)
    )


def erase(settings: Settings, customer: str, reason: str) -> ErasureReport:
    """`rapport erase` (privacy/erasure.py): keys, suppression, every version, the log."""
    versions = projection_versions(settings)
    names = [v.name for v in versions.versions() if v.records is not None]
    with publisher(settings) as sink:
        return erase_customer(
            versions.engine,
            key_store(settings, versions.engine),
            names,
            master_secrets(settings).pepper,
            customer,
            reason,
            lambda event: sink.publish_and_wait(event),
            identity_rules(settings),
        )


def privacy_gate(settings: Settings) -> SuppressionGate:
    return SuppressionGate(master_secrets(settings).pepper)


def unsealers(settings: Settings) -> UnsealerFactory:
    """Opens an Unsealer; picklable, for replay processes (the key store's tables exist)."""
    key_store(settings).engine.dispose()
    return UnsealerFactory(settings.db_url, master_secrets(settings).wrapping_key)


def identity_rules(settings: Settings) -> IdentityRules:
    return IdentityRules(
        default_region=settings.identity_default_region or None,
        max_customers_per_identifier=settings.identity_max_customers_per_identifier,
    )


def projection_versions(settings: Settings, **engine_options: Any) -> PostgresVersions:
    """The projection store: every version, in the configured PostgreSQL."""
    db = engine(settings, **engine_options)
    key_store(settings, db)  # the gate reads its suppression table in every batch
    return PostgresVersions(
        db, identity_rules(settings), contact_rules(settings), privacy_gate(settings)
    )


def contact_rules(settings: Settings) -> ContactRules:
    purposes = (p.strip() for p in settings.contact_opt_in_purposes.split(","))
    return ContactRules(opt_in_purposes=frozenset(p for p in purposes if p))


def worker_config(
    settings: Settings, *, batch_size: int = 1000, member: int | None = None
) -> WorkerConfig:
    """The worker's settings; `member` is its place in a group (infra/worker_group.py)."""
    return WorkerConfig(
        bootstrap=settings.bootstrap,
        topic=settings.topic,
        dlq_topic=settings.dlq_topic,
        consumer_group=settings.consumer_group,
        data_dir=member_data_dir(settings.state_dir, member),
        batch_size=batch_size,
        stall_timeout_s=settings.worker_stall_timeout_s,
        health_port=settings.worker_health_port,
        health_host=settings.worker_health_host,
    )


SETUP_LOCK = 7_243_010  # advisory lock id: one process at a time creates what is missing


@contextmanager
def setting_up(settings: Settings) -> Iterator[None]:
    """Hold the set-up lock: workers of a group start together on a fresh database, and
    `CREATE … IF NOT EXISTS` of the same schema or role at once fails in all but one."""
    engine = sa.create_engine(settings.db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": SETUP_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": SETUP_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def worker_app(settings: Settings, config: WorkerConfig) -> faust.App:
    """The worker, writing to the pinned version (RAPPORT_PROJECTION_SCHEMA) or the active
    one, whose tables are created first if need be."""
    with setting_up(settings):
        return _worker_app(settings, config)


def _worker_app(settings: Settings, config: WorkerConfig) -> faust.App:
    from streams.deadletter import DeadLetterWriter
    from streams.kafka_log import KafkaLog
    from streams.population_process import ScorerConfig, ScorerProcess
    from streams.worker import build_app

    versions = projection_versions(settings, pool_size=2)
    pinned = settings.projection_schema
    if pinned is None:
        versions.ensure_active()
    else:
        versions.prepare(pinned)
    with versions.engine.begin() as conn:  # the analysts' masked views' pseudonyms
        roles.set_pseudonym_key(conn, pseudonym_secret(settings))
        # Tables are created and upgraded above, as the owner; batches, the scorer and the
        # key reads run as the writer role when the server has it (least privilege).
        version = pinned or views.active_schema(conn)
        as_writer = settings.worker_as_writer_role and version is not None
        if as_writer and version is not None:
            as_writer = roles.writer_role_for_worker(conn, version, KEYS_SCHEMA)
        writer = roles.WRITER_ROLE if as_writer else None
    if writer:
        versions.engine.dispose()
        versions = PostgresVersions(
            make_engine(settings.db_url, pool_size=2, role=writer),
            identity_rules(settings),
            contact_rules(settings),
            privacy_gate(settings),
        )
    scorer = None
    if settings.scores_every_s > 0:
        scorer = ScorerProcess(
            ScorerConfig(
                settings.db_url,
                pinned,
                every_s=settings.scores_every_s,
                params=score_parameters(settings),
                as_of_day=settings.scores_as_of,
                contact_rules=contact_rules(settings),
                role=writer,
            )
        )
    return build_app(
        config,
        versions.store(pinned),
        DeadLetterWriter(settings.bootstrap, settings.dlq_topic),
        KafkaLog(settings.bootstrap),
        scorer,
        replace(unsealers(settings), role=writer)(),
    )


def score_parameters(settings: Settings) -> ScoreParameters:
    return ScoreParameters(
        default_margin_rate=settings.score_margin_rate,
        annual_rate=settings.score_annual_rate,
        horizon_years=settings.score_horizon_years,
        rfm_weights=RfmWeights(
            settings.score_rfm_weight_recency,
            settings.score_rfm_weight_frequency,
            settings.score_rfm_weight_monetary,
        ),
        engagement=EngagementParameters(half_life_days=settings.score_engagement_half_life_days),
    )


def rebuilder(
    settings: Settings, *, batch_size: int = 20_000, jobs: int | None = None
) -> Rebuilder:
    return Rebuilder(
        projection_versions(settings),
        settings.bootstrap,
        settings.topic,
        dlq_topic=settings.dlq_topic,
        batch_size=batch_size,
        params=score_parameters(settings),
        jobs=jobs,
        unsealers=unsealers(settings),
    )


def read_api_app(settings: Settings) -> FastAPI:
    """The HTTP read API over the active projection version; every route but /healthz,
    /readyz and /metrics needs an API key (`api_keys`)."""
    from readapi.app import create_app
    from readapi.keys import CachedApiKeys

    store = api_keys(settings)
    return create_app(
        store.engine,
        score_parameters(settings),
        identity_rules(settings),
        contact_rules(settings),
        keys=CachedApiKeys(store, ttl_s=settings.api_key_cache_s),
        pseudonym=pseudonymizer(settings),
        subject_rights=subject_rights(settings),
        operations=operations_status(settings),
        page_addresses=page_addresses(settings),
    )


def operations_status(settings: Settings) -> Callable[[], dict[str, Any]]:
    """What the read API's operator page (/ui/operations) shows: `rapport status --json`,
    collected at most every OPERATIONS_STATUS_TTL_S however many people look (it asks
    Kafka, PostgreSQL and every worker, and reads the dead-letter topic)."""
    from infra.status import collect

    lock = threading.Lock()
    last: tuple[float, dict[str, Any]] | None = None

    def current() -> dict[str, Any]:
        nonlocal last
        seen = last
        if seen is not None and time.monotonic() - seen[0] <= OPERATIONS_STATUS_TTL_S:
            return seen[1]
        if seen is not None:
            if not lock.acquire(blocking=False):
                return seen[1]  # another request is collecting it: the last one meanwhile
        elif not lock.acquire(timeout=OPERATIONS_STATUS_WAIT_S):
            raise TimeoutError("the status is still being collected; try again shortly")
        try:
            last = (time.monotonic(), collect(settings).to_json())
            return last[1]
        finally:
            lock.release()

    return current


def subject_rights(settings: Settings) -> SubjectRights:
    return SubjectRights(settings)


class SubjectRights:
    """Erasure and subject access for the read API's admins."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._keys: PostgresKeyStore | None = None

    def erase(self, customer: str, reason: str) -> dict[str, Any]:
        return erase(self.settings, customer, reason).to_json()

    def export(self, conn: sa.Connection, customer: str) -> dict[str, Any]:
        from privacy.subject import export_subject

        s = self.settings
        self._keys = self._keys or key_store(s)
        return export_subject(
            conn,
            self._keys,
            master_secrets(s).pepper,
            customer,
            rules=identity_rules(s),
            params=score_parameters(s),
        )


def api_keys(settings: Settings) -> PostgresApiKeys:
    """The read API's key store, its table created if missing; also keys the analysts'
    masked views with this installation's pseudonym secret."""
    from readapi.keys import PostgresApiKeys

    store = PostgresApiKeys(engine(settings))
    store.create_schema()
    with store.engine.begin() as conn:
        roles.set_pseudonym_key(conn, pseudonym_secret(settings))
    return store


def pseudonym_secret(settings: Settings) -> bytes:
    """RAPPORT_PSEUDONYM_SECRET, else the state dir's pseudonym.key, made on first use
    (random, mode 0600; a concurrent first use keeps whichever file was linked first)."""
    if settings.pseudonym_secret is not None:
        return settings.pseudonym_secret.get_secret_value().encode()
    path = settings.state_dir / PSEUDONYM_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{PSEUDONYM_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(draft, path)  # fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip().encode()


def page_addresses(settings: Settings) -> PageAddresses:
    """Seals customers' page addresses for analysts (readapi/addresses.py), under a key
    derived from the pseudonym secret: the same customer keeps its address across restarts,
    and changing the secret changes every address, as it changes every pseudonym."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from readapi.addresses import PageAddresses

    key = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=b"rapport page addresses"
    ).derive(pseudonym_secret(settings))
    return PageAddresses(key)


def pseudonymizer(settings: Settings) -> Callable[[str], str]:
    """A stable keyed pseudonym of an identifier: HMAC-SHA256 under `pseudonym_secret`,
    16 hex digits (what the rapport_analyst views compute in SQL, too)."""
    key = pseudonym_secret(settings)

    def pseudonym(identifier: str) -> str:
        digest = hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()
        return digest[: roles.PSEUDONYM_HEX_DIGITS]

    return pseudonym


def sources(settings: Settings) -> PostgresSources:
    """The write-key store, its table created if missing."""
    from collector.sources import PostgresSources

    store = PostgresSources(engine(settings))
    store.create_schema()
    return store


def collector_app(settings: Settings) -> FastAPI:
    """The HTTP collector. Needs PostgreSQL now; Kafka may come later (503 until then)."""
    from collector.app import CollectorDeps, RequestLimits, create_app
    from collector.ingest import IngestLimits, Ingestor
    from collector.metrics import CollectorMetrics
    from collector.segment import TrackMapping
    from collector.sources import CachedKeys
    from infra.kafka import broker_answers

    store = sources(settings)
    publisher = Publisher.from_config(
        PublisherConfig(
            bootstrap=settings.bootstrap,
            topic=settings.topic,
            linger_ms=2,
            connect_eagerly=False,
            max_block_ms=settings.collector_kafka_max_block_ms,
            request_timeout_ms=int(settings.collector_ack_timeout_s * 1000),
            delivery_timeout_ms=int(settings.collector_ack_timeout_s * 1000) + 5000,
            sealer=sealer(settings),
        )
    )

    def database_answers() -> bool:
        try:
            with store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def shutdown() -> None:
        try:
            publisher.close(timeout=settings.collector_ack_timeout_s)
        except PublishError:
            pass  # those requests were already answered 503: their clients retry them
        finally:
            store.engine.dispose()

    metrics = CollectorMetrics()
    deps = CollectorDeps(
        keys=CachedKeys(store, ttl_s=settings.collector_key_cache_s),
        ingestor=Ingestor(
            publisher,
            IngestLimits(
                max_event_bytes=settings.collector_max_event_bytes,
                ack_timeout_s=settings.collector_ack_timeout_s,
            ),
            on_acknowledged=metrics.acknowledged,
        ),
        metrics=metrics,
        mapping=TrackMapping.load(settings.collector_track_mapping),
        limits=RequestLimits(
            max_body_bytes=settings.collector_max_body_bytes,
            max_batch_events=settings.collector_max_batch_events,
            default_rate=settings.collector_rate_limit,
            max_future_skew=timedelta(seconds=settings.collector_max_future_skew_s),
        ),
        readiness={
            "kafka": lambda: broker_answers(settings.bootstrap, timeout_s=2.0),
            "database": database_answers,
        },
        on_shutdown=shutdown,
    )
    return create_app(deps)
