"""The alert rules and the Grafana dashboard in ``deploy/`` ask only for series the hub
exports, with labels those series carry (no Prometheus or Grafana runs here, so they
are checked against what ``GET /metrics`` says)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gridhub.metrics import SinkMetrics, StatusCollector, render

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "gridhub-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "gridhub-dashboard.json"
SERIES = re.compile(r"\bgridhub_[a-z0-9_]+\b")
BY = re.compile(r"\bby\s*\(([^)]*)\)")

STATUS: dict[str, Any] = {
    "sources": {
        "police": {
            "healthy": True,
            "records": 1,
            "errors_by_kind": {"database": 1},
            "last_success": "2026-11-24T01:00:00+00:00",
            "positions": {"syrk": {"low": "x"}},
        }
    },
    "stages": {"routed": 1, "merged": 1, "sunk_rows": 1, "sink_retries": 0},
    "lag": {"gridhub.person": {"0": 1}},
    "tables": {"resident": 1},
}


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Sample name -> its label names, from a scrape of every family the hub serves."""
    registry = CollectorRegistry()
    registry.register(StatusCollector(lambda: STATUS, lambda: [("police", "syrk", "r", 1)]))
    sink = SinkMetrics(registry)
    sink.inserted("resident", 1, 0.01)
    sink.flushed(1, [1.0])
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(render(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def check_expression(expr: str, exported: dict[str, set[str]]) -> None:
    assert expr.count("(") == expr.count(")"), expr
    names = SERIES.findall(expr)
    assert names, f"asks for no gridhub series: {expr}"
    unknown = [name for name in names if name not in exported]
    assert unknown == [], f"not exported by the hub: {unknown} in {expr}"
    labels = set().union(*(exported[name] for name in names)) | {"le"}
    for group in BY.findall(expr):
        wanted = {label.strip() for label in group.split(",") if label.strip()}
        assert wanted <= labels, f"labels {wanted - labels} not on {names}: {expr}"


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text("utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_every_alert_is_complete_and_asks_for_exported_series(
    exported: dict[str, set[str]],
) -> None:
    alerts = {rule["alert"] for rule in rules()}
    assert {  # issue: silent source, lag growing, freshness, dead-letter spike
        "GridhubSourceSilent",
        "GridhubLagGrowing",
        "GridhubFreshnessHigh",
        "GridhubDeadLetterSpike",
    } <= alerts
    for rule in rules():
        assert rule["labels"]["severity"] in ("page", "warn"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        if rule["alert"] != "GridhubDown":  # that one is Prometheus's own `up`
            check_expression(rule["expr"], exported)


def test_every_dashboard_panel_asks_for_exported_series(exported: dict[str, set[str]]) -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    assert dashboard["uid"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            check_expression(target["expr"], exported)


def test_the_check_refuses_a_misspelt_series_and_a_missing_label(
    exported: dict[str, set[str]],
) -> None:
    with pytest.raises(AssertionError, match="not exported"):
        check_expression("rate(gridhub_source_record_pulled_total[5m])", exported)
    with pytest.raises(AssertionError, match="not on"):
        check_expression("sum by (topic) (gridhub_source_up)", exported)
