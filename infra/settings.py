"""One settings object for everything Rapport runs; read once, in the composition root."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "rapport"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "rapport"


class Settings(BaseSettings):
    """Every setting is also an environment variable: `RAPPORT_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="RAPPORT_", extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port of an external broker; unset = the local broker `infra up` runs.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an external PostgreSQL; unset = the embedded server.",
    )
    state_dir: Path = Field(default_factory=_default_state_dir)
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Where the Kafka jars are kept."
    )
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_brokers: int = Field(
        default=1,
        ge=1,
        description="Brokers in the cluster: `infra up` runs this many locally (each also a "
        "KRaft controller), and topics Rapport creates get min(3, this) replicas.",
    )
    kafka_heap: str = Field(default="1g", description="Heap of each local broker's JVM.")
    postgres_port: int = 15432
    database_name: str = "rapport"
    topic: str = "rapport.touchpoints"
    dlq_topic: str = "rapport.touchpoints.dlq"
    topic_partitions: int = 6
    consumer_group: str = "rapport-worker"
    projection_schema: str | None = Field(
        default=None,
        description="Pin the worker to one projection version's schema; unset = follow the "
        "active version (so a replay's swap hands the live stream over).",
    )

    # The identity graph (docs/analysts.md): projection parameters, so a change needs a
    # rebuild (`rapport replay`) to apply to history.
    identity_default_region: str | None = Field(
        default="VN",
        description="ISO country of phone numbers written without +country (E.164 otherwise).",
    )
    identity_max_customers_per_identifier: int = Field(
        default=5,
        description="An identifier seen with more customer ids than this (a shared support@ "
        "address, the call center's own number) stops merging anyone and is reported.",
    )

    # The stream worker (`rapport worker`).
    worker_stall_timeout_s: float = Field(
        default=120.0,
        description="Liveness: the worker exits (code 3, for its supervisor to restart it) when "
        "lag has not drained for this long while Kafka and PostgreSQL answer.",
    )
    worker_health_port: int | None = Field(
        default=None,
        description="Serve the worker's GET /healthz, /readyz and /metrics at this port "
        "(on RAPPORT_WORKER_HEALTH_HOST); unset = none. "
        "Member i of a worker group serves on this port + i.",
    )
    worker_health_host: str = Field(
        default="127.0.0.1",
        description="The address the worker's health and metrics server listens on "
        "(0.0.0.0 where Prometheus scrapes it from another host or container).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text, or json: one JSON object per line for a log shipper (worker, "
        "collector, read API).",
    )
    worker_processes: int | None = Field(
        default=None,
        ge=1,
        description="Processes `rapport worker` runs in its consumer group; unset = one per core.",
    )

    # The HTTP read API (`rapport api`).
    api_host: str = "127.0.0.1"
    api_port: int = 8300
    api_key_cache_s: float = Field(
        default=2.0, description="How long a verified API key is trusted before re-checking."
    )
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="Keys the pseudonyms analysts see in place of personal identifiers (API "
        "and the rapport_analyst views); unset = a random secret made once and kept in "
        "STATE_DIR/pseudonym.key (mode 0600). Changing it changes every pseudonym.",
    )

    # The HTTP collector (`rapport collector`).
    collector_host: str = "127.0.0.1"
    collector_port: int = 8088
    collector_max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest request body (after gzip), else 413."
    )
    collector_max_batch_events: int = Field(default=1000, description="Most events per request.")
    collector_max_event_bytes: int = Field(
        default=32 * 1024, description="Largest single event as stored in Kafka, else 413."
    )
    collector_rate_limit: float = Field(
        default=5000.0, description="Events per second per source, unless the source sets one."
    )
    collector_ack_timeout_s: float = Field(
        default=15.0, description="How long a request waits for Kafka's acks before 503."
    )
    collector_kafka_max_block_ms: int = Field(
        default=2000, description="How long a send waits for Kafka metadata before 503."
    )
    collector_track_mapping: Path | None = Field(
        default=None,
        description="TOML file mapping Segment track event names to Rapport types "
        "(added to, and overriding, the built-in e-commerce and e-mail mappings).",
    )
    collector_key_cache_s: float = Field(
        default=2.0, description="How long a verified write key is trusted before re-checking."
    )
    collector_max_future_skew_s: float = Field(
        default=300.0,
        ge=0,
        description="How far in the future an event's occurred_at may be (the sender's clock "
        "running ahead), else 422.",
    )

    @property
    def local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def local_postgres(self) -> bool:
        return self.database_url is None

    @property
    def local_kafka_ports(self) -> list[tuple[int, int]]:
        """(client port, controller port) of each local broker. Node k (from 0) takes
        kafka_port + 2k and kafka_controller_port + 2k: the single broker's 19092/19093 go on
        as 19094/19095 and 19096/19097, never reusing a port of another node."""
        return [
            (self.kafka_port + 2 * k, self.kafka_controller_port + 2 * k)
            for k in range(self.kafka_brokers)
        ]

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or ",".join(
            f"127.0.0.1:{port}" for port, _ in self.local_kafka_ports
        )

    @property
    def topic_replication(self) -> int:
        """Replicas of each partition Rapport creates: three when there are three brokers."""
        return min(self.kafka_brokers, 3)

    @property
    def min_insync_replicas(self) -> int:
        """Replicas an acks=all write needs: two of three, so one broker may stop without
        refusing writes or losing an acknowledged one."""
        return 2 if self.topic_replication >= 3 else 1

    @model_validator(mode="after")
    def _local_ports_distinct(self) -> Settings:
        if self.local_kafka:
            ports = [port for pair in self.local_kafka_ports for port in pair]
            if len(set(ports)) != len(ports):
                raise ValueError(
                    f"{self.kafka_brokers} local brokers on kafka_port {self.kafka_port} and "
                    f"kafka_controller_port {self.kafka_controller_port} would share ports "
                    f"({ports}): node k uses both plus 2k; make their difference odd (19092/19093)"
                )
        return self

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.postgres_port}/{self.database_name}"

    # Score parameters (see docs/analysts.md). Changing one changes the scores a rebuild
    # computes: replay, verify and swap to apply it to every customer.
    score_margin_rate: Decimal = Decimal("0.25")
    score_annual_rate: float = 0.10
    score_horizon_years: int = 3
    score_rfm_weight_recency: float = 1.0
    score_rfm_weight_frequency: float = 1.0
    score_rfm_weight_monetary: float = 1.0
    score_engagement_half_life_days: float = 30.0
    # The population (top, segments, RFM, tiers): scored as of the end of this day, kept
    # current by the worker every scores_every_s seconds (0: this worker does not score).
    scores_as_of: date | None = Field(
        default=None,
        description="Score the population as of the end of this day; unset = today (UTC).",
    )
    scores_every_s: float = 2.0
    # The contact policy (docs/analysts.md): purposes contacted only after an explicit
    # opt-in (e.g. "marketing" under the GDPR); others are allowed until an opt-out.
    contact_opt_in_purposes: str = Field(
        default="",
        description="Comma-separated purposes that need an opt-in before any contact.",
    )

    worker_as_writer_role: bool = Field(
        default=True,
        description="The worker's batches, scorer and key reads act as `rapport_writer` "
        "(SET ROLE) when the server has it and the connecting user may become it.",
    )
    # Privacy (docs/privacy.md): the master secret data keys are wrapped with and identifier
    # tokens are keyed by. Lose it and every sealed field in the log is unreadable.
    master_key: str | None = Field(
        default=None,
        description="The master secret, base64 of 32 bytes; unset = read from master_key_file.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="File holding the master secret, created (mode 0600) when absent; "
        "unset = STATE_DIR/master.key.",
    )

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.state_dir / "master.key"

    def as_env(self) -> dict[str, str]:
        """These settings as RAPPORT_* variables, for a child process (services as external)."""
        return {
            "RAPPORT_KAFKA_BOOTSTRAP": self.bootstrap,
            "RAPPORT_DATABASE_URL": self.db_url,
            "RAPPORT_STATE_DIR": str(self.state_dir),
            "RAPPORT_MASTER_KEY_FILE": str(self.master_key_path),
            **({"RAPPORT_MASTER_KEY": self.master_key} if self.master_key else {}),
            "RAPPORT_CACHE_DIR": str(self.cache_dir),
            "RAPPORT_TOPIC": self.topic,
            "RAPPORT_DLQ_TOPIC": self.dlq_topic,
            "RAPPORT_TOPIC_PARTITIONS": str(self.topic_partitions),
            "RAPPORT_KAFKA_BROKERS": str(self.kafka_brokers),
            "RAPPORT_CONSUMER_GROUP": self.consumer_group,
            "RAPPORT_LOG_FORMAT": self.log_format,
            "RAPPORT_WORKER_HEALTH_HOST": self.worker_health_host,
            "RAPPORT_WORKER_STALL_TIMEOUT_S": str(self.worker_stall_timeout_s),
            "RAPPORT_SCORES_EVERY_S": str(self.scores_every_s),
            "RAPPORT_CONTACT_OPT_IN_PURPOSES": self.contact_opt_in_purposes,
            **(
                {"RAPPORT_SCORES_AS_OF": self.scores_as_of.isoformat()} if self.scores_as_of else {}
            ),
            "RAPPORT_IDENTITY_DEFAULT_REGION": self.identity_default_region or "",
            "RAPPORT_IDENTITY_MAX_CUSTOMERS_PER_IDENTIFIER": str(
                self.identity_max_customers_per_identifier
            ),
            **(
                {"RAPPORT_WORKER_HEALTH_PORT": str(self.worker_health_port)}
                if self.worker_health_port is not None
                else {}
            ),
            **(
                {"RAPPORT_WORKER_PROCESSES": str(self.worker_processes)}
                if self.worker_processes is not None
                else {}
            ),
            **(
                {"RAPPORT_PROJECTION_SCHEMA": self.projection_schema}
                if self.projection_schema
                else {}
            ),
            **(
                {"RAPPORT_PSEUDONYM_SECRET": self.pseudonym_secret.get_secret_value()}
                if self.pseudonym_secret
                else {}
            ),
        }
