"""`rapport status`: is the pipeline healthy, on one screen.

Each part is asked of the service that knows it, and a service that does not answer is
reported as such (the rest is still shown):
- lag per partition: the log's end offset (Kafka) minus the position the active
  projection version stored (PostgreSQL), the same measure as the worker's watchdog;
- freshness: now minus the arrival time (received_at) of the newest projected event,
  kept per partition in the version's positions table;
- dead letters: the dead-letter topic's records, counted by stage and error type;
- the workers: the consumer group's members (Kafka), and each worker's /readyz where a
  health port is configured (the last error it met comes from there).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from infra.settings import Settings
from schemas.errors import RapportError

# The dead letters' total comes from the topic's offsets; their reasons from at most this
# many of the newest records of each partition, read for at most this long.
DEAD_LETTERS_READ_PER_PARTITION = 10_000
READ_DEAD_LETTERS_FOR_S = 5.0
PROBE_TIMEOUT_S = 2.0
# PostgreSQL: give up connecting, and any statement, after this long.
DATABASE_TIMEOUTS = {"connect_timeout": 3, "options": "-c statement_timeout=5000"}


@dataclass(frozen=True)
class Service:
    name: str
    state: str  # up, down, not ready, unknown
    detail: str = ""


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    end: int  # the log's next offset
    position: int  # the active version's next offset (0: nothing stored yet)
    lag: int
    stored_at: datetime | None  # when the version last advanced on this partition


@dataclass(frozen=True)
class DeadLetters:
    total: int  # records in the dead-letter topic
    by_reason: dict[str, int]  # "stage: error type" -> records, of the `reasons_of` read
    latest: list[dict[str, Any]]  # the newest few, as `rapport dlq list` shows them
    reasons_of: int = 0  # the newest records read for `by_reason` (all, unless very many)


@dataclass(frozen=True)
class Worker:
    member: str  # the group's member id, or the health port's address
    host: str
    partitions: list[int] | None  # None: not known (the worker's assignor is faust's own)
    ready: bool | None = None
    last_error: str | None = None


@dataclass
class Status:
    checked_at: datetime
    topic: str
    services: list[Service] = field(default_factory=list)
    active_version: str | None = None
    partitions: list[PartitionLag] | None = None  # None: Kafka or PostgreSQL did not answer
    freshness_s: float | None = None
    last_received_at: datetime | None = None
    dead_letters: DeadLetters | None = None
    workers: list[Worker] = field(default_factory=list)
    last_error: str | None = None

    @property
    def lag(self) -> int | None:
        return None if self.partitions is None else sum(p.lag for p in self.partitions)

    def to_json(self) -> dict[str, Any]:
        answer = asdict(self)
        answer["lag"] = self.lag
        plain: dict[str, Any] = json.loads(json.dumps(answer, default=_iso))
        return plain


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def collect(settings: Settings) -> Status:
    status = Status(checked_at=datetime.now(UTC), topic=settings.topic)
    ends = _log_ends(settings, status)
    _projection_side(settings, status, ends)
    _dead_letters(settings, status)
    _workers(settings, status)
    for name, port in (("collector", settings.collector_port), ("api", settings.api_port)):
        status.services.append(_probe_http(name, f"http://127.0.0.1:{port}/readyz"))
    errors = [w.last_error for w in status.workers if w.last_error]
    status.last_error = errors[0] if errors else status.last_error
    return status


def _log_ends(settings: Settings, status: Status) -> dict[int, int] | None:
    from infra.kafka import broker_answers
    from streams.kafka_log import KafkaLog

    if not broker_answers(settings.bootstrap, timeout_s=PROBE_TIMEOUT_S):
        status.services.append(Service("kafka", "down", f"{settings.bootstrap} does not answer"))
        return None
    log = KafkaLog(settings.bootstrap, timeout_s=5.0)
    try:
        ends = {p: end for (_, p), end in log.ends(settings.topic).items()}
    except Exception as exc:
        status.services.append(Service("kafka", "down", _why(exc)))
        return None
    finally:
        log.close()
    status.services.append(Service("kafka", "up", settings.bootstrap))
    return ends


def _projection_side(settings: Settings, status: Status, ends: dict[int, int] | None) -> None:
    from infra.bootstrap import engine as make_engine
    from projections.postgres import views
    from projections.postgres.tables import build_tables

    try:
        engine = make_engine(settings, pool_size=1, max_overflow=0, connect_args=DATABASE_TIMEOUTS)
    except RapportError as exc:  # the local server is not running
        status.services.append(Service("postgres", "down", str(exc)))
        return
    try:
        with engine.connect() as conn:
            active = views.active_schema_if_any(conn)
            rows = []
            if active is not None:
                p = build_tables(active).positions
                rows = list(
                    conn.execute(
                        sa.select(
                            p.c.partition, p.c.next_offset, p.c.stored_at, p.c.last_received_at
                        ).where(p.c.topic == settings.topic)
                    )
                )
    except sa.exc.SQLAlchemyError as exc:
        status.services.append(Service("postgres", "down", _why(exc)))
        return
    finally:
        engine.dispose()
    status.services.append(Service("postgres", "up", f"active version: {active or 'none'}"))
    status.active_version = active
    stored = {r.partition: r for r in rows}
    received = [r.last_received_at for r in rows if r.last_received_at is not None]
    if received:
        status.last_received_at = max(received)
        status.freshness_s = (status.checked_at - status.last_received_at).total_seconds()
    if ends is None:
        return
    status.partitions = []
    for partition, end in sorted(ends.items()):
        row = stored.get(partition)
        position = row.next_offset if row else 0
        status.partitions.append(
            PartitionLag(
                partition, end, position, max(0, end - position), row.stored_at if row else None
            )
        )


def _dead_letters(settings: Settings, status: Status) -> None:
    """The total from the topic's offsets; the reasons from its newest records, read
    within READ_DEAD_LETTERS_FOR_S (a broker that stops answering midway ends the read,
    it never hangs the command or the operator page)."""
    from kafka import TopicPartition

    from streams.kafka_clients import consumer
    from streams.redrive import ParkedRecord

    if not _kafka_up(status):
        return
    reasons: Counter[str] = Counter()
    read: list[ParkedRecord] = []
    client = consumer(
        settings.bootstrap,
        request_timeout_ms=int(PROBE_TIMEOUT_S * 1000) + 3000,
        bootstrap_timeout_ms=int(PROBE_TIMEOUT_S * 1000) + 2000,
    )
    try:
        partitions = client.partitions_for_topic(settings.dlq_topic) or set()
        tps = [TopicPartition(settings.dlq_topic, p) for p in sorted(partitions)]
        starts, ends = client.beginning_offsets(tps), client.end_offsets(tps)
        total = sum(ends[tp] - starts[tp] for tp in tps)
        wanted = {tp for tp in tps if ends[tp] > starts[tp]}
        if wanted:
            client.assign(sorted(wanted, key=lambda tp: tp.partition))
            for tp in wanted:
                client.seek(tp, max(starts[tp], ends[tp] - DEAD_LETTERS_READ_PER_PARTITION))
        deadline = time.monotonic() + READ_DEAD_LETTERS_FOR_S
        while wanted and time.monotonic() < deadline:
            for tp, records in client.poll(timeout_ms=500).items():
                for r in records:
                    if r.offset < ends[tp]:
                        read.append(
                            ParkedRecord(r.partition, r.offset, r.key, r.value, list(r.headers))
                        )
                if not records or records[-1].offset + 1 >= ends[tp]:
                    wanted.discard(tp)
    except Exception as exc:
        status.last_error = status.last_error or f"dead-letter topic: {_why(exc)}"
        return
    finally:
        client.close()
    for record in read:
        reasons[f"{record.stage}: {record.error_type}"] += 1
    read.sort(key=lambda r: r.failed_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    status.dead_letters = DeadLetters(
        total,
        dict(reasons.most_common()),
        [
            {
                "ref": r.ref,
                "failed_at": r.failed_at,
                "stage": r.stage,
                "error_type": r.error_type,
                "error": r.error,
                "event_id": r.event_id,
            }
            for r in read[:5]
        ],
        reasons_of=len(read),
    )


def _workers(settings: Settings, status: Status) -> None:
    status.workers = _group_members(settings) if _kafka_up(status) else []
    if not status.workers:  # none joined (yet): the local members' health ports, if any
        status.workers = _probe_workers(settings)
    ready = sum(1 for w in status.workers if w.ready is not False)
    if not status.workers:
        status.services.append(Service("worker", "down", "no member in the consumer group"))
    elif ready < len(status.workers):
        status.services.append(
            Service("worker", "not ready", f"{ready} of {len(status.workers)} ready")
        )
    else:
        status.services.append(Service("worker", "up", f"{len(status.workers)} in the group"))


def _kafka_up(status: Status) -> bool:
    return any(s.name == "kafka" and s.state == "up" for s in status.services)


def _group_members(settings: Settings) -> list[Worker]:
    """The consumer group's members, with their partitions and, for a member on this
    machine that serves a health port (faust puts its web address in the member's
    metadata), its /readyz answer."""
    from streams.kafka_clients import admin

    try:
        client = admin(settings.bootstrap, request_timeout_ms=5000)
    except Exception:
        return []
    try:
        groups = client.describe_groups([settings.consumer_group])
    except Exception:  # no such group yet (no worker ever joined), or no coordinator
        return []
    finally:
        client.close()
    group = groups.get(settings.consumer_group) if isinstance(groups, dict) else None
    workers = []
    for m in (group or {}).get("members", []):
        host = str(m.get("client_host", "")).lstrip("/")
        port = _web_port(str(m.get("member_metadata", "")))
        ready, last_error, served = None, None, False
        if port is not None and host in ("127.0.0.1", "localhost", "::1"):
            answer = _get_json(f"http://127.0.0.1:{port}/readyz")
            if answer is not None:
                ready, last_error, served = answer[0] == 200, answer[1].get("last_error"), True
        workers.append(
            Worker(
                member=str(m.get("member_id", "")),
                # faust names a port even when the worker serves none: shown once it answers
                host=f"{host}:{port}" if served else host,
                partitions=_assigned(m.get("member_assignment"), settings.topic),
                ready=ready,
                last_error=last_error,
            )
        )
    return workers


def _web_port(metadata: str) -> int | None:
    found = re.search(r'"url":\s*"http://[^":/]+:(\d+)"', metadata)
    return int(found.group(1)) if found else None


def _assigned(assignment: Any, topic: str) -> list[int] | None:
    """The partitions of `topic` in a decoded ConsumerAssignment, when it is one."""
    if not isinstance(assignment, dict):
        return None
    for entry in assignment.get("assigned_partitions") or ():
        if isinstance(entry, dict) and entry.get("topic") == topic:
            return sorted(int(p) for p in entry.get("partitions") or ())
    return []


def _probe_workers(settings: Settings) -> list[Worker]:
    """Each local member's /readyz, where the workers serve a health port."""
    if settings.worker_health_port is None:
        return []
    count = settings.worker_processes or os.cpu_count() or 1
    found = []
    for i in range(count):
        port = settings.worker_health_port + i
        answer = _get_json(f"http://127.0.0.1:{port}/readyz")
        if answer is None:
            continue
        status_code, body = answer
        found.append(
            Worker(
                member=f"member {i}",
                host=f"127.0.0.1:{port}",
                partitions=None,
                ready=status_code == 200,
                last_error=body.get("last_error"),
            )
        )
    return found


def _probe_http(name: str, url: str) -> Service:
    answer = _get_json(url)
    if answer is None:
        return Service(name, "down", f"{url} does not answer")
    code, _ = answer
    return Service(name, "up" if code == 200 else "not ready", url)


def _get_json(url: str) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as refused:
        try:
            return refused.code, json.loads(refused.read() or b"{}")
        except ValueError:
            return refused.code, {}
    except (OSError, ValueError):
        return None


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]
