"""``/metrics`` families from a hub status and the sink's own observations, parsed back
with Prometheus's text parser."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gridhub.metrics import SinkMetrics, StatusCollector, render

STATUS: dict[str, Any] = {
    "sources": {
        "police": {
            "healthy": True,
            "records": 120,
            "errors": 3,
            "errors_by_kind": {"connection": 2, "database": 1},
            "last_success": "2026-11-24T01:00:00+00:00",
            "positions": {"syrk": {"low": "2026-11-21 05:07:24", "window": 1}},
        },
        "hotline": {"healthy": False, "records": 0, "errors": 1, "last_success": None},
    },
    "stages": {"routed": 120, "merged": 118, "sunk_rows": 300, "sink_retries": 2},
    "lag": {
        "gridhub.person": {"0": 5, "1": 0},
        "gridhub-route-__assignor-__leader": {"0": 0},
    },
    "tables": {"resident": 100, "events": 120},
}


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> labels -> value, as a Prometheus server would read them."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(render(registry).decode()):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[labels] = sample.value
    return out


def test_status_families_follow_prometheus_conventions() -> None:
    registry = CollectorRegistry()
    dead = [("police", "syrk", "公民身份号码校验位不符", 4)]
    registry.register(StatusCollector(lambda: STATUS, lambda: dead))
    samples = scrape(registry)
    assert samples["gridhub_source_records_pulled_total"] == {
        (("source", "hotline"),): 0.0,
        (("source", "police"),): 120.0,
    }
    assert samples["gridhub_source_errors_total"] == {
        (("kind", "connection"), ("source", "police")): 2.0,
        (("kind", "database"), ("source", "police")): 1.0,
    }
    assert samples["gridhub_source_up"][(("source", "hotline"),)] == 0.0
    assert samples["gridhub_source_last_success_timestamp_seconds"] == {
        (("source", "police"),): 1795482000.0
    }
    (cursor,) = samples["gridhub_source_cursor_info"]
    assert ("position", "low=2026-11-21 05:07:24 window=1") in cursor
    assert samples["gridhub_stage_records_total"] == {
        (("stage", "routed"),): 120.0,
        (("stage", "merged"),): 118.0,
        (("stage", "sunk"),): 300.0,
    }
    assert samples["gridhub_sink_retries_total"] == {(): 2.0}
    assert samples["gridhub_consumer_lag_messages"] == {
        (("partition", "0"), ("topic", "gridhub.person")): 5.0,
        (("partition", "1"), ("topic", "gridhub.person")): 0.0,
    }  # the assignor's bookkeeping topic is left out
    assert samples["gridhub_clickhouse_up"] == {(): 1.0}
    assert samples["gridhub_dead_letters"] == {
        (("entity", "syrk"), ("reason", "公民身份号码校验位不符"), ("source", "police")): 4.0
    }


def test_a_hub_without_status_yet_or_without_clickhouse_still_answers() -> None:
    registry = CollectorRegistry()
    status: dict[str, Any] | None = None
    registry.register(StatusCollector(lambda: status))
    assert scrape(registry)["gridhub_clickhouse_up"] == {(): 0.0}
    status = {**STATUS, "store_error": "ClickHouse does not answer: refused"}
    assert scrape(registry)["gridhub_clickhouse_up"] == {(): 0.0}


def test_sink_observations_are_histograms_in_base_units() -> None:
    registry = CollectorRegistry()
    sink = SinkMetrics(registry)
    sink.inserted("resident", 500, 0.03)
    sink.inserted("events", 700, 0.2)
    sink.flushed(1200, [1.5, 2.5, 4000.0])
    samples = scrape(registry)
    assert samples["gridhub_sink_rows_total"] == {
        (("table", "resident"),): 500.0,
        (("table", "events"),): 700.0,
    }
    assert samples["gridhub_sink_insert_duration_seconds_count"][(("table", "events"),)] == 1.0
    assert samples["gridhub_sink_batch_rows_sum"] == {(): 1200.0}
    freshness = samples["gridhub_freshness_seconds_bucket"]
    assert freshness[(("le", "2.0"),)] == 1.0
    assert freshness[(("le", "5.0"),)] == 2.0
    assert freshness[(("le", "+Inf"),)] == 3.0
