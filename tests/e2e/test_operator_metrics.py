"""``GET /metrics`` of a running hub: it parses with Prometheus's text parser, and the
figures move when records flow (issue: operators on duty)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from gridhub.simulators.county import County
from gridhub.simulators.party_api import PartyApiServer
from gridhub.simulators.police_db import PoliceDatabase
from prometheus_client.parser import text_string_to_metric_families

from gridhub.demo import DEMO_PARTY_TOKEN, write_config
from tests.e2e.conftest import HubProcess, hold_back_newer_half

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
    kept, later = hold_back_newer_half(county, police)
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
        [key for key in county.truth_police().dead_letters if key in {r["rkbh"] for r in kept}]
    )
    assert total(before, "gridhub_clickhouse_up") == 1.0

    police.upsert_syrk(later)
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


def test_a_silent_or_stopped_system_turns_its_source_unhealthy_and_healthy_again(
    tmp_path: Path, county: County
) -> None:
    """``[hub] source_silent_seconds``: a request that hangs makes the source unhealthy
    once it has had no successful pull for that long; a stopped system at once (its
    connection is refused); both in ``/health`` and ``gridhub status``, and healthy
    again once it answers, at the same address."""
    county.write_reference(tmp_path / "reference")
    party = PartyApiServer(county.party_members, county.party_activities, DEMO_PARTY_TOKEN)
    party.start()
    config = write_config(tmp_path, None, party_url=party.base_url)
    hub = HubProcess(config)
    try:
        hub.start(extra_env={"GRIDHUB_HUB__SOURCE_SILENT_SECONDS": "6"})
        address = hub.wait_caught_up()["health"]

        party.delay_next(25.0)  # the next request hangs (the client waits up to 30 s)
        silent = hub.wait_for(lambda s: not s["sources"]["party"]["healthy"], timeout=30)
        assert "no successful pull" in silent["sources"]["party"]["reason"]
        assert "source_silent_seconds = 6" in silent["sources"]["party"]["reason"]

        party.stop()
        stopped = hub.wait_for(
            lambda s: "connection failed" in s["sources"]["party"]["reason"], timeout=60
        )
        assert not stopped["sources"]["party"]["healthy"]
        health = httpx.get(f"http://{address}/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["components"]["source.party"]["healthy"] is False
        shown = gridhub_status(config)
        assert shown["sources"]["party"]["healthy"] is False
        metrics = scrape(address)
        assert total(metrics, "gridhub_source_up", source="party") == 0.0
        assert total(metrics, "gridhub_source_errors_total", source="party", kind="connection") > 0

        party.start()  # back, at the same address
        hub.wait_for(lambda s: s["sources"]["party"]["healthy"], timeout=90)
        assert httpx.get(f"http://{address}/health", timeout=10).status_code == 200
        assert gridhub_status(config)["sources"]["party"]["healthy"] is True
        assert hub.stop(signal.SIGTERM) == 0
    finally:
        hub.kill()
        party.stop()


def gridhub_status(config: Path) -> dict[str, Any]:
    """``gridhub status --json``, as a script reads it."""
    done = subprocess.run(
        [sys.executable, "-m", "gridhub.cli", "status", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_json_logs_carry_the_component_and_never_a_secret_or_a_full_id_number(
    hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    """``[hub] log_format = "json"``: one JSON object per log line, each naming its
    component, in every process's log; a refused token and the county's ID numbers
    appear in none of them."""
    wrong_token = "wrong-party-token-4711"
    party = PartyApiServer(county.party_members, county.party_activities, DEMO_PARTY_TOKEN)
    party.start()
    config = write_config(hub_dir, police.dsn, party_url=party.base_url)
    hub = HubProcess(config)
    try:
        hub.start(
            extra_env={
                "GRIDHUB_HUB__LOG_FORMAT": "json",
                "GRIDHUB_SOURCES__PARTY__TOKEN": wrong_token,
            }
        )
        hub.wait_for(
            lambda s: (
                s["sources"].get("police", {}).get("caught_up")
                and not s["sources"].get("party", {"healthy": True})["healthy"]
                and s["stages"]["sunk_rows"] > 0
            )
        )
        assert hub.stop(signal.SIGTERM) == 0
    finally:
        hub.kill()
        party.stop()
    logs = [hub.log, *sorted((hub_dir / "data" / "logs").glob("*.log"))]
    entries = []
    for path in logs:
        text = path.read_text("utf-8")
        assert wrong_token not in text, path.name
        for person in county.persons:
            assert person.id_number not in text, (path.name, "a full ID number")
        entries += [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        other = [line for line in text.splitlines() if line and not line.startswith("{")]
        if path.name in ("ingest.log", "route.log", "merge.log", "merge-1.log"):
            assert other == [], (path.name, other[:3])  # the libraries' lines are JSON too
        elif path == hub.log:
            assert "gridhub running" in other[0] and len(other) <= 3  # the start banner
    assert entries and all(entry["component"] and entry["ts"] for entry in entries)
    refused = [e for e in entries if e.get("source") == "party" and "sources.party.token" in str(e)]
    assert refused, "the refusal is logged, naming the setting to fix"
