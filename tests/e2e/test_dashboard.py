"""What an operator on duty sees of a running hub, in one run: the dashboard at ``/`` in
a real headless Chromium (Debian's), and ``GET /metrics``.

The page loads from the hub alone, its charts draw the hub's data, it reads in
Chinese and in English, dead letters show a masked sample, and a screenshot is taken.
The metrics parse with Prometheus's text parser and move when records flow."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
from gridhub.simulators.county import County
from gridhub.simulators.police_db import PoliceDatabase

from tests.e2e.conftest import HubProcess, hold_back_newer_half, scrape, total

FULL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def chromium(url: str, profile: Path, *extra: str) -> str:
    """Chromium headless on ``url``, as the machine's probe runs it (no background
    networking: the page must need nothing but the hub)."""
    binary = shutil.which("chromium")
    assert binary, "Debian's chromium is missing: `make test` installs it (apt-get)"
    done = subprocess.run(
        [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--window-size=1366,1000",
            "--virtual-time-budget=8000", *extra, url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_dashboard_and_the_metrics_follow_a_running_hub(
    hub: HubProcess, county: County, police: PoliceDatabase, tmp_path: Path
) -> None:
    kept, later = hold_back_newer_half(county, police)
    hub.start(extra_env={"GRIDHUB_HUB__DASHBOARD_SAMPLE_SECONDS": "1"})
    status = hub.wait_caught_up()
    base = f"http://{status['health']}"
    before = scrape(status["health"])
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
    for row in later:  # records keep arriving for a while, as they do in a county
        police.upsert_syrk([row])
        time.sleep(0.02)
    deadline = time.monotonic() + 60
    while True:  # until the last hour holds points of flow and of freshness
        overview = httpx.get(f"{base}/api/overview", timeout=10).json()
        fresh = [h for h in overview["history"] if h["fresh_p50"] is not None]
        if len(fresh) >= 2 and len(overview["history"]) >= 3:
            break
        assert time.monotonic() < deadline, overview["history"]
        time.sleep(1)
    assert overview["status"]["sources"]["police"]["records"] > 0
    assert overview["dead_letters"], "the county has police rows the hub refuses"
    assert all(not FULL_ID.search(d["sample"]) for d in overview["dead_letters"])
    assert overview["communities"]  # tickets and incidents wait unlinked somewhere

    english = chromium(f"{base}/?lang=en", tmp_path / "en", "--dump-dom")
    assert 'data-ready="1"' in english  # the script fetched and drew the data
    lines = re.findall(r'<path class="line" d="M[^"]+L[^"]+"', english)
    assert len(lines) >= 3, "rates, lag and freshness draw lines"
    assert "public security (police)" in english and "Dead letters" in english
    assert re.findall(r'(?:src|href)="([^"]+)"', english) == [
        "/static/dashboard.css",
        "/static/dashboard.js",
    ]  # everything from the hub, nothing from a CDN
    assert not FULL_ID.search(english)
    chinese = chromium(f"{base}/?lang=zh", tmp_path / "zh", "--dump-dom")
    assert "数据流转" in chinese and "死信" in chinese and "公安 (police)" in chinese

    shot = tmp_path / "dashboard.png"
    chromium(f"{base}/", tmp_path / "shot", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 30_000  # a page with tables and charts, not a blank one

    status = hub.wait_for(
        lambda s: s["caught_up"] and s["sources"]["police"]["records"] > pulled, timeout=120
    )
    hub.wait_for(lambda s: s["written_at"] > status["written_at"])  # the next snapshot
    after = scrape(status["health"])
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
