"""`gridhub replay SOURCE --since T`: a source pulled again changes nothing but what is new.

Both ways: with the hub stopped (the checkpoint files move back) and while it
runs (the process that owns the source takes the request over Kafka, stops the
source, moves its checkpoints back and starts it again).
"""

from __future__ import annotations

import json
import signal
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gridhub.simulators.county import County
from gridhub.simulators.police_db import PoliceDatabase
from gridhub.streams.normalize import CHINA_TZ

from tests.e2e.conftest import HubProcess, open_store
from tests.e2e.test_police_path import gridhub

pytestmark = pytest.mark.e2e

NEW_ID = "11010519491231002X"


def merged(client: Any) -> dict[str, tuple[Any, ...]]:
    """Every resident's merged fields, without what each computation changes."""
    result = client.query(
        "SELECT * EXCEPT (version, updated_at) FROM grid.resident FINAL ORDER BY resident_key"
    )
    return {row[0]: tuple(row) for row in result.result_rows}


def merged_while_running(config: str) -> dict[str, dict[str, Any]]:
    """``merged``, asked of the running hub with ``gridhub query``."""
    answer = gridhub(
        "query",
        "SELECT * EXCEPT (version, updated_at) FROM grid.resident FINAL ORDER BY resident_key",
        "--format",
        "json",
        "-c",
        config,
    )
    assert answer.returncode == 0, answer.stderr
    return {row["resident_key"]: row for row in json.loads(answer.stdout)["data"]}


def events_while_running(config: str) -> int:
    answer = gridhub(
        "query", "SELECT count() AS n FROM grid.events FINAL", "-f", "json", "-c", config
    )
    assert answer.returncode == 0, answer.stderr
    return int(json.loads(answer.stdout)["data"][0]["n"])


def new_resident(county: County, police: PoliceDatabase) -> None:
    """A resident the county did not have: genuinely new data."""
    now = datetime.now(CHINA_TZ).replace(microsecond=0, tzinfo=None)
    police.upsert_syrk(
        [dict(county.syrk_rows[0], rkbh="R-NEW-1", gmsfhm=NEW_ID, xm="新 来", gxsj=now)]
    )


def test_a_replay_while_the_hub_runs_repulls_without_changing_the_result_except_new_data(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    config = str(hub_dir / "gridhub.toml")
    everything = len(county.syrk_rows) + len(county.jq_rows)
    hub.start()
    hub.wait_for(lambda s: s.get("caught_up") and s["sources"]["police"]["records"] >= everything)
    before = merged_while_running(config)
    events_before = events_while_running(config)

    new_resident(county, police)
    asked_at = datetime.now(UTC)
    done = gridhub("replay", "police", "--since", "2000-01-01", "-c", config)
    assert done.returncode == 0, done.stderr
    assert "police.syrk" in done.stdout and "police.jq" in done.stdout
    assert "applied by" in done.stdout

    def repulled(status: dict[str, Any]) -> bool:
        police_now = status["sources"].get("police") or {}
        first_poll = police_now.get("first_poll_at")
        return bool(
            status.get("caught_up")
            and first_poll is not None
            and datetime.fromisoformat(first_poll) > asked_at  # a new pull since the request
            and police_now["records"] >= everything + 1  # of everything, from 2000 on
        )

    hub.wait_for(repulled)
    after = merged_while_running(config)
    (new_key,) = set(after) - set(before)
    assert after[new_key]["id_number"] == NEW_ID
    assert {k: v for k, v in after.items() if k != new_key} == before
    assert events_while_running(config) == events_before + 1
    assert hub.stop(signal.SIGTERM) == 0


def test_a_replay_repulls_without_changing_the_result_except_new_data(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    config = str(hub_dir / "gridhub.toml")
    hub.start()
    hub.wait_caught_up()
    assert hub.stop(signal.SIGTERM) == 0
    with closing(open_store(hub_dir)) as client:
        before = merged(client)
        events_before = client.query("SELECT count() FROM grid.events FINAL").result_rows[0][0]

    unknown = gridhub("replay", "nowhere", "--since", "2000-01-01", "-c", config)
    assert unknown.returncode == 2
    done = gridhub("replay", "police", "--since", "2000-01-01", "-c", config)
    assert done.returncode == 0, done.stderr
    assert "police.syrk" in done.stdout and "police.jq" in done.stdout

    new_resident(county, police)
    hub.start()
    status = hub.wait_for(
        lambda s: (
            s.get("caught_up")
            and s["sources"]["police"]["records"] >= len(county.syrk_rows) + len(county.jq_rows)
        )
    )
    assert status["sources"]["police"]["records"] > 1  # it really pulled everything again
    assert hub.stop(signal.SIGTERM) == 0

    with closing(open_store(hub_dir)) as client:
        after = merged(client)
        events_after = client.query("SELECT count() FROM grid.events FINAL").result_rows[0][0]
        (new_key,) = set(after) - set(before)
        assert after[new_key][1] == NEW_ID
        assert {k: v for k, v in after.items() if k != new_key} == before
        assert events_after == events_before + 1
