"""``GET /metrics`` of a running hub: it parses with Prometheus's text parser, and the
figures move when records flow (issue: operators on duty)."""

from __future__ import annotations

import signal

import httpx
from gridhub.simulators.county import County
from gridhub.simulators.police_db import PoliceDatabase
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import HubProcess

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(address: str) -> Samples:
    answer = httpx.get(f"http://{address}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a sample over the series that carry ``labels``."""
    return sum(
        value
        for series, value in samples.get(name, {}).items()
        if set(labels.items()) <= set(series)
    )


def test_metrics_of_a_running_hub_parse_and_move_when_records_flow(
    hub: HubProcess, county: County, police: PoliceDatabase
) -> None:
    rows = sorted(county.syrk_rows, key=lambda r: r["gxsj"])
    half = len(rows) // 2
    with police.connect() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM syrk WHERE rkbh IN %s", ([r["rkbh"] for r in rows[half:]],))
    hub.start()
    status = hub.wait_caught_up()
    address = status["health"]
    before = scrape(address)
    pulled = total(before, "gridhub_source_records_pulled_total", source="police")
    assert pulled == status["sources"]["police"]["records"] > 0
    assert total(before, "gridhub_source_up", source="police") == 1.0
    assert total(before, "gridhub_source_last_success_timestamp_seconds", source="police") > 0
    assert total(before, "gridhub_source_cursor_info", source="police", entity="syrk") == 1.0
    assert total(before, "gridhub_freshness_seconds_count") > 0
    assert total(before, "gridhub_sink_rows_total", table="resident") > 0
    assert total(before, "gridhub_sink_insert_duration_seconds_count", table="events") > 0
    assert ("partition", "0") in next(
        series
        for series in before["gridhub_consumer_lag_messages"]
        if ("topic", "gridhub.raw.police.syrk") in series
    )
    assert total(before, "gridhub_dead_letters", source="police") == len(
        [
            key
            for key in county.truth_police().dead_letters
            if key in {r["rkbh"] for r in rows[:half]}
        ]
    )
    assert total(before, "gridhub_clickhouse_up") == 1.0

    police.upsert_syrk(rows[half:])
    status = hub.wait_for(
        lambda s: s["caught_up"] and s["sources"]["police"]["records"] > pulled, timeout=120
    )
    hub.wait_for(lambda s: s["written_at"] > status["written_at"])  # the next snapshot
    after = scrape(address)
    for name, labels in (
        ("gridhub_source_records_pulled_total", {"source": "police"}),
        ("gridhub_stage_records_total", {"stage": "routed"}),
        ("gridhub_stage_records_total", {"stage": "merged"}),
        ("gridhub_stage_records_total", {"stage": "sunk"}),
        ("gridhub_sink_rows_total", {"table": "resident"}),
        ("gridhub_freshness_seconds_count", {}),
        ("gridhub_sink_batch_rows_count", {}),
    ):
        assert total(after, name, **labels) > total(before, name, **labels), name
    assert hub.stop(signal.SIGTERM) == 0
