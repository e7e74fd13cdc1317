"""docker-compose.yml cannot run here (no Docker engine); keep it valid and in step."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra.kafka import KAFKA_VERSION
from infra.settings import Settings

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


def test_compose_defines_kafka_postgres_and_worker() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"kafka", "postgres", "rapport"}
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["rapport"]["command"] == ["worker"]


def test_compose_uses_only_real_setting_names() -> None:
    environment = yaml.safe_load(COMPOSE.read_text())["services"]["rapport"]["environment"]
    known = {f"RAPPORT_{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= known
