"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); keep them valid
and in step with the code: the cluster `rapport infra up --brokers 3` runs, commands the
CLI has, settings that exist, every package in the image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import typer.main
import yaml

from infra.cli import app
from infra.kafka import KAFKA_VERSION
from infra.settings import Settings

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
RAPPORT = ("worker", "collector", "api")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_compose_runs_three_brokers_postgres_and_rapport() -> None:
    services = _services()
    assert set(services) == {*BROKERS, "postgres", *RAPPORT}
    assert services["worker"]["command"][0] == "worker"
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_the_brokers_are_one_kraft_cluster_of_three_voters() -> None:
    services = _services()
    brokers = [services[name] for name in BROKERS]
    voters = ",".join(f"{k + 1}@{name}:9093" for k, name in enumerate(BROKERS))
    for k, broker in enumerate(brokers):
        env = broker["environment"]
        assert broker["image"] == f"apache/kafka:{KAFKA_VERSION}"
        assert env["KAFKA_NODE_ID"] == k + 1
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"].startswith(f"PLAINTEXT://{BROKERS[k]}:9092,")
        # Its log on its own volume (the image keeps it in /tmp unless told).
        [volume] = broker["volumes"]
        assert volume == f"{BROKERS[k]}-data:{env['KAFKA_LOG_DIRS']}"
    assert len({b["environment"]["CLUSTER_ID"] for b in brokers}) == 1


def test_every_topic_has_three_replicas_and_a_write_needs_two() -> None:
    for name in BROKERS:
        env = _services()[name]["environment"]
        for key in (
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        ):
            assert env[key] == 3, (name, key)
        for key in (
            "KAFKA_MIN_INSYNC_REPLICAS",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
        ):
            assert env[key] == 2, (name, key)
    for name in RAPPORT:  # the topics Rapport creates itself
        assert Settings(**_settings_of(name)).topic_replication == 3


def test_the_host_reaches_the_brokers_where_the_local_cluster_listens() -> None:
    """The CLI on the host with RAPPORT_KAFKA_BROKERS=3 works against either."""
    local = Settings(kafka_bootstrap=None, kafka_brokers=3, kafka_port=19092)
    for name, (port, _) in zip(BROKERS, local.local_kafka_ports, strict=True):
        broker = _services()[name]
        assert broker["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert f"HOST://127.0.0.1:{port}" in broker["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def _settings_of(service: str) -> dict[str, str]:
    environment: dict[str, str] = _services()[service]["environment"]
    prefix = "RAPPORT_"
    return {k.removeprefix(prefix).lower(): v for k, v in environment.items()}


def test_rapport_services_use_only_real_setting_names_and_every_broker() -> None:
    known = {f"RAPPORT_{name.upper()}" for name in Settings.model_fields}
    for name in RAPPORT:
        environment = _services()[name]["environment"]
        assert set(environment) <= known, name
        assert environment["RAPPORT_KAFKA_BROKERS"] == str(len(BROKERS))
        assert environment["RAPPORT_KAFKA_BOOTSTRAP"].split(",") == [f"{b}:9092" for b in BROKERS]


def test_rapport_services_run_commands_the_cli_has() -> None:
    commands = typer.main.get_command(app).commands
    for name in RAPPORT:
        service = _services()[name]
        assert service["build"] == "."
        assert service["command"][0] in commands, (name, service["command"])


def test_rapport_services_share_the_state_holding_the_master_key() -> None:
    for name in RAPPORT:
        env = _services()[name]["environment"]
        assert f"rapport-state:{env['RAPPORT_STATE_DIR']}" in _services()[name]["volumes"]


def test_the_image_holds_every_package_pyproject_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert sorted(copied) == sorted(packages)
    assert set(pyproject["tool"]["setuptools"]["package-data"]) <= packages
