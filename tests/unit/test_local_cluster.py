"""The local cluster's layout: ports that never collide, one directory and quorum entry per
node, replication that follows the number of brokers (and none of it for a single one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.kafka import LocalKafka
from infra.services import new_topic
from infra.settings import Settings


def _local(tmp_path: Path, brokers: int, port: int = 19092, controller: int = 19093) -> Settings:
    return Settings(
        kafka_bootstrap=None,
        kafka_brokers=brokers,
        kafka_port=port,
        kafka_controller_port=controller,
        state_dir=tmp_path,
    )


def _properties(path: Path) -> dict[str, str]:
    lines = (line.partition("=") for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, _, value in lines}


def test_a_single_broker_is_what_it_was(tmp_path: Path) -> None:
    settings = _local(tmp_path, 1)
    assert settings.bootstrap == "127.0.0.1:19092"
    assert (settings.topic_replication, settings.min_insync_replicas) == (1, 1)
    kafka = LocalKafka(settings)
    [node] = kafka.nodes
    assert node.home == tmp_path / "kafka"
    config = _properties(kafka._write_config(node))
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"
    topic = new_topic(settings, "t", {"retention.ms": "-1"})
    assert (topic.replication_factor, topic.topic_configs) == (1, {"retention.ms": "-1"})


@pytest.mark.parametrize(("port", "controller"), [(19092, 19093), (29092, 29093), (39092, 39093)])
def test_three_brokers_take_ports_of_their_own(tmp_path: Path, port: int, controller: int) -> None:
    """The defaults of development, tests and this cluster's own test all extend cleanly."""
    settings = _local(tmp_path, 3, port, controller)
    pairs = settings.local_kafka_ports
    assert pairs == [(port, controller), (port + 2, controller + 2), (port + 4, controller + 4)]
    assert len({p for pair in pairs for p in pair}) == 6
    assert settings.bootstrap == f"127.0.0.1:{port},127.0.0.1:{port + 2},127.0.0.1:{port + 4}"


def test_ports_that_would_collide_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="share ports"):
        _local(tmp_path, 3, 19092, 19094)  # node 2's client port is node 1's controller port
    with pytest.raises(ValidationError, match="share ports"):
        _local(tmp_path, 1, 19092, 19092)
    # An external cluster's brokers are not ours to place.
    Settings(kafka_bootstrap="k1:9092,k2:9092", kafka_brokers=3, kafka_controller_port=19094)


def test_three_brokers_are_three_voters_replicating_everything(tmp_path: Path) -> None:
    settings = _local(tmp_path, 3)
    assert (settings.topic_replication, settings.min_insync_replicas) == (3, 2)
    kafka = LocalKafka(settings)
    assert [n.home for n in kafka.nodes] == [
        tmp_path / "kafka-cluster-3" / f"node-{i}" for i in (1, 2, 3)
    ]
    voters = "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    for node in kafka.nodes:
        config = _properties(kafka._write_config(node))
        assert config["node.id"] == str(node.node_id)
        assert config["controller.quorum.voters"] == voters
        assert config["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        )
        assert config["log.dirs"] == str(node.data_dir)
        for key in (
            "default.replication.factor",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "share.coordinator.state.topic.replication.factor",
        ):
            assert config[key] == "3", key
        for key in (
            "min.insync.replicas",
            "transaction.state.log.min.isr",
            "share.coordinator.state.topic.min.isr",
        ):
            assert config[key] == "2", key
    topic = new_topic(settings, "t", {"retention.ms": "-1"})
    assert topic.replication_factor == 3
    assert topic.topic_configs == {"min.insync.replicas": "2", "retention.ms": "-1"}


def test_two_brokers_replicate_twice_and_accept_a_write_on_one(tmp_path: Path) -> None:
    settings = _local(tmp_path, 2)
    assert (settings.topic_replication, settings.min_insync_replicas) == (2, 1)
    assert _local(tmp_path, 5).topic_replication == 3


def test_down_and_status_find_every_cluster_on_disk(tmp_path: Path) -> None:
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka-cluster-3" / "node-1").mkdir(parents=True)
    (tmp_path / "kafka-cluster-x").mkdir()
    found = LocalKafka.on_disk(_local(tmp_path, 1))
    assert [(c.brokers, c.name) for c in found] == [(1, "kafka"), (3, "kafka (3 brokers)")]
    assert [len(c.nodes) for c in found] == [1, 3]


def test_settings_reach_child_processes_with_the_cluster_size(tmp_path: Path) -> None:
    env = _local(tmp_path, 3).as_env()
    assert env["RAPPORT_KAFKA_BROKERS"] == "3"
    assert env["RAPPORT_KAFKA_BOOTSTRAP"].count(",") == 2
