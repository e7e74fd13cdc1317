"""One broker of three killed while events flow: nothing acknowledged is lost or counted twice.

A three-node KRaft cluster of this module's own (`rapport infra up --brokers 3`'s code, on
ports RAPPORT_TEST_CLUSTER_PORT.. +5, small heaps), the touchpoint topic on three replicas
with min.insync.replicas=2, the real worker, and the SDK publishing throughout. The node
killed (SIGKILL: lost, not shut down) is the active controller, and leads a partition of the
topic: the quorum elects another controller, the partition another leader, and producer and
worker carry on with the two nodes left; then the node comes back and catches up.
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from kafka.admin import ConfigResource, ConfigResourceType

from infra import bootstrap
from infra.kafka import KafkaNode, LocalKafka
from infra.processes import read_pid
from infra.scratch import Scratch
from infra.settings import Settings
from producers import Publisher
from producers.errors import DeliveryFailed
from producers.simulator import simulate
from projections.postgres.store import make_engine
from schemas import Envelope
from streams import kafka_clients
from tests.conftest import local_services
from tests.integration.accounting import assert_accounted, stored_total, wait_drained
from tests.support import running_worker, topic_size, wait_for

pytestmark = pytest.mark.integration

# Nodes on +0/+1, +2/+3, +4/+5: clear of development's 19092.. and the tests' 29092..,
# and below Linux's ephemeral range (32768-60999). In it, as 39092.. were, a client's
# outgoing connection could take a node's port first: "Address already in use" in CI.
CLUSTER_PORT = int(os.environ.get("RAPPORT_TEST_CLUSTER_PORT", "27092"))
EVENTS, CUSTOMERS, CHUNK = 12_000, 1_500, 200


@pytest.fixture(scope="module")
def cluster(
    service_urls: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalKafka]:
    """Three brokers for this module, stopped after it. Skipped where the session's
    services are external: it runs brokers from the local infrastructure's jars."""
    local_services("a cluster of its own needs Java and Maven, as do")
    _, admin_url = service_urls
    kafka = LocalKafka(
        Settings(
            kafka_bootstrap=None,
            database_url=admin_url,
            state_dir=tmp_path_factory.mktemp("cluster"),
            kafka_brokers=3,
            kafka_port=CLUSTER_PORT,
            kafka_controller_port=CLUSTER_PORT + 1,
            kafka_heap="320m",
            topic_partitions=3,
        )
    )
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


class Flow(threading.Thread):
    """A producer publishing in small batches through the fault; keeps what Kafka
    acknowledged and what it refused (DeliveryFailed), and when each was."""

    def __init__(self, publisher: Publisher, events: list[Envelope]) -> None:
        super().__init__(daemon=True)
        self.publisher = publisher
        self.events = events
        self.acked: list[tuple[float, uuid.UUID]] = []
        self.failed: set[uuid.UUID] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self.events), CHUNK):
                chunk = self.events[start : start + CHUNK]
                try:
                    self.publisher.publish_all(chunk)
                except DeliveryFailed as exc:
                    self.failed.update(exc.event_ids)
                now = time.monotonic()
                self.acked += [(now, e.event_id) for e in chunk if e.event_id not in self.failed]
                time.sleep(0.2)
        except BaseException as exc:
            self.error = exc

    @property
    def acked_ids(self) -> set[uuid.UUID]:
        return {event_id for _, event_id in self.acked}


_progress = stored_total


def _partitions(settings: Settings) -> list[dict]:
    admin = kafka_clients.admin(settings.bootstrap, request_timeout_ms=10_000)
    try:
        [topic] = admin.describe_topics([settings.topic])
        return sorted(topic["partitions"], key=lambda p: p["partition_index"])
    finally:
        admin.close()


def _assert_replicated(settings: Settings) -> None:
    admin = kafka_clients.admin(settings.bootstrap)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, settings.topic)
        configs = admin.describe_configs([resource])["topic"][settings.topic]
    finally:
        admin.close()
    assert configs["min.insync.replicas"]["value"] == "2"
    for partition in _partitions(settings):
        assert len(partition["replica_nodes"]) == len(partition["isr_nodes"]) == 3, partition


def _controller(settings: Settings) -> int:
    admin = kafka_clients.admin(settings.bootstrap)
    try:
        [topic] = admin.describe_metadata_quorum()["topics"]
        return int(topic["partitions"][0]["leader_id"])
    finally:
        admin.close()


def _kill(node: KafkaNode) -> None:
    pid = read_pid(node.pid_file)
    assert pid is not None, f"node {node.node_id} is not running"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: read_pid(node.pid_file) is None, timeout=10, what="the node to die")


def test_a_broker_killed_while_events_flow(
    cluster: LocalKafka, service_urls: tuple[str, str], tmp_path: Path
) -> None:
    _, admin_url = service_urls
    base = Settings(
        kafka_bootstrap=cluster.settings.bootstrap,
        database_url=admin_url,
        kafka_brokers=3,
        topic_partitions=3,
    )
    events = list(itertools.islice(simulate(customers=CUSTOMERS, seed=17), EVENTS))
    with closing(Scratch(base, tmp_path, prefix="test")) as scratch:
        s = scratch.settings(scratch.topic("touchpoints"), scratch.database("rapport"), "state")
        _assert_replicated(s)
        # Opened first: its key store's tables exist before the worker reads them.
        with bootstrap.publisher(s) as publisher, running_worker(s, "--batch-size", "200") as w:
            flow = Flow(publisher, events)
            flow.start()
            wait_for(
                lambda: len(flow.acked) >= EVENTS // 3 and _progress(s) > 0,
                timeout=90,
                what="events flowing",
            )
            victim = cluster.nodes[_controller(s) - 1]
            led = [p["partition_index"] for p in _partitions(s) if p["leader_id"] == victim.node_id]
            assert led, f"the controller, node {victim.node_id}, leads no partition"
            _kill(victim)
            killed_at = time.monotonic()
            flow.join(timeout=150)
            assert not flow.is_alive(), "the producer did not finish"
            assert flow.error is None, flow.error
            assert not flow.failed, f"{len(flow.failed)} events refused with a broker down"
            after = [t for t, _ in flow.acked if t > killed_at]
            assert len(after) >= EVENTS // 3, "too few events were published after the kill"
            wait_drained(s, timeout=120)  # on the two nodes left
            assert w.poll() is None, "the worker exited"
            survivors = {p["leader_id"] for p in _partitions(s)}
            assert victim.node_id not in survivors
            assert _controller(s) != victim.node_id

            cluster.start()  # the node comes back and catches up
            wait_for(
                lambda: all(len(p["isr_nodes"]) == 3 for p in _partitions(s)),
                timeout=60,
                what="the node back in every partition's in-sync replicas",
            )
            assert w.poll() is None, "the worker exited"
        print(
            f"\nbroker kill: node {victim.node_id} (controller, leader of partitions {led}); "
            f"first ack {after[0] - killed_at:.1f} s after it, "
            f"{len(after)} of {EVENTS} events acknowledged after it"
        )
        # Each acknowledged event is in the log once (idempotent producer across the
        # leader change), and projected once.
        assert topic_size(s) == EVENTS
        engine = make_engine(s.db_url)
        try:
            with engine.connect() as conn:
                rows, distinct = conn.execute(
                    sa.text("SELECT count(*), count(DISTINCT event_id) FROM core_v1.timeline")
                ).one()
        finally:
            engine.dispose()
        assert rows == distinct == EVENTS
        assert_accounted(s, flow.acked_ids)
