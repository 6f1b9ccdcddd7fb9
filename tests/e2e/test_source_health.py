"""A source system that hangs or stops, as an operator on duty sees it: ``/health``,
``gridhub status``, ``/metrics`` and the JSON logs (issue: operators on duty)."""

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

from gridhub.demo import DEMO_PARTY_TOKEN, write_config
from tests.e2e.conftest import HubProcess, scrape, total


def test_a_silent_or_stopped_system_turns_its_source_unhealthy_and_healthy_again(
    tmp_path: Path, county: County
) -> None:
    """``[hub] source_silent_seconds``: a request that hangs makes the source unhealthy
    once it has had no successful pull for that long; a stopped system at once (its
    connection is refused); both in ``/health`` and ``gridhub status``, and healthy
    again once it answers, at the same address.

    The hub logs JSON lines here (``[hub] log_format = "json"``): every line of every
    process's log is JSON with its component, the failure is logged with its source,
    and neither the token nor any of the county's ID numbers appears."""
    county.write_reference(tmp_path / "reference")
    party = PartyApiServer(county.party_members, county.party_activities, DEMO_PARTY_TOKEN)
    party.start()
    config = write_config(tmp_path, None, party_url=party.base_url)
    hub = HubProcess(config)
    try:
        hub.start(
            extra_env={"GRIDHUB_HUB__SOURCE_SILENT_SECONDS": "6", "GRIDHUB_HUB__LOG_FORMAT": "json"}
        )
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
    entries = []
    for path in [hub.log, *sorted((tmp_path / "data" / "logs").glob("*.log"))]:
        text = path.read_text("utf-8")
        assert DEMO_PARTY_TOKEN not in text, path.name
        for person in county.persons:
            assert person.id_number not in text, (path.name, "a full ID number")
        entries += [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        other = [line for line in text.splitlines() if line and not line.startswith("{")]
        if path.name in ("ingest.log", "route.log", "merge.log", "merge-1.log"):
            assert other == [], (path.name, other[:3])  # the libraries' lines are JSON too
        elif path == hub.log:
            assert "gridhub running" in other[0] and len(other) <= 3  # the start banner
    assert entries and all(entry["component"] and entry["ts"] for entry in entries)
    failed = [e for e in entries if e.get("source") == "party" and "connection" in str(e)]
    assert failed, "the failure is logged with its source"


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
