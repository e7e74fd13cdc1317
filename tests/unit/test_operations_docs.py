"""The alert rules and the dashboard in docs/operations/ name only metrics (and labels)
that Rapport's processes export: a renamed metric fails here, not in production."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from collector.metrics import CollectorMetrics
from observability.exposition import scrape
from observability.http import HttpMetrics
from observability.worker import WorkerMetrics
from streams.health import Health
from streams.pipeline import BatchOutcome

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations"
# Labels Prometheus adds to every scraped series, and histograms' bucket label.
ADDED_BY_PROMETHEUS = {"instance", "job", "le"}
BUILT_IN = {"up"}


def _exported() -> dict[str, set[str]]:
    """Every sample name the three services export, with its label names; each metric is
    exercised once so that labelled ones have a sample."""
    health = Health()
    worker = WorkerMetrics(health)
    health.waiting("PostgreSQL", "restarting", 0.1)
    outcome = BatchOutcome(projected=1, parked=1, newest_received=datetime.now(UTC))
    outcome.projected_by_type["call_center.call"] = 1
    outcome.parked_by_reason[("decode", "ContractError")] = 1
    outcome.transaction_seconds.append(0.01)
    worker.observe_batch(outcome, 0.02, 2)
    worker.observe_lag({("t", 0): 5}, {("t", 0): 3}, [("t", 0)])
    collector = CollectorMetrics()
    collector.observe("POST", "/v1/events", 200, 0.01)
    collector.acknowledged(1, 0.005)
    api = HttpMetrics("api")
    api.observe("GET", "/v1/top", 200, 0.01)
    names: dict[str, set[str]] = {}
    for registry in (worker.registry, collector.registry, api.registry):
        for family in text_string_to_metric_families(scrape(registry).decode()):
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    return names


def _expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    found = [
        (f"alert {rule['alert']}", rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    found += [
        (f"panel {panel['title']!r}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    return found


def test_alerts_and_dashboard_name_only_exported_metrics_and_labels() -> None:
    exported = _exported()
    expressions = _expressions()
    assert len(expressions) >= 15
    for where, expr in expressions:
        used = set(re.findall(r"\b(rapport_[a-z_]+|process_[a-z_]+|up)\b", expr))
        assert used, f"{where} names no metric: {expr}"
        for name in used - BUILT_IN:
            assert name in exported, f"{where}: no service exports {name}"
        # Labels in selectors (name{label=...}) and in by (...) clauses.
        for name, matchers in re.findall(r"\b((?:rapport|process)_[a-z_]+)\{([^}]*)\}", expr):
            for label in re.findall(r"(\w+)\s*[=!~]", matchers):
                assert label in exported[name] | ADDED_BY_PROMETHEUS, f"{where}: {name}{{{label}}}"
        grouped = {
            label.strip()
            for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr)
            for label in clause.split(",")
        }
        labels = set().union(*(exported[n] for n in used - BUILT_IN)) | ADDED_BY_PROMETHEUS
        assert grouped <= labels, f"{where}: groups by {grouped - labels}, which no metric has"


def test_every_alert_says_what_it_means() -> None:
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {
        "RapportLagGrowing",
        "RapportFreshnessOverObjective",
        "RapportDeadLettersAppearing",
        "RapportNoProgress",
    } <= {a["alert"] for a in alerts}
    operations = (DOCS.parent / "operations.md").read_text()
    for alert in alerts:
        assert alert["annotations"]["summary"]
        assert alert["alert"] in operations, f"docs/operations.md does not explain {alert['alert']}"
