"""`gridhub replay SOURCE --since T`: a source pulled again changes nothing but what is new."""

from __future__ import annotations

import signal
from contextlib import closing
from datetime import datetime
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


def test_a_replay_repulls_without_changing_the_result_except_new_data(
    hub: HubProcess, hub_dir: Path, county: County, police: PoliceDatabase
) -> None:
    config = str(hub_dir / "gridhub.toml")
    hub.start()
    hub.wait_caught_up()
    refused = gridhub("replay", "police", "--since", "2000-01-01", "-c", config)
    assert refused.returncode == 1
    assert "running" in refused.stderr
    assert hub.stop(signal.SIGTERM) == 0
    with closing(open_store(hub_dir)) as client:
        before = merged(client)
        events_before = client.query("SELECT count() FROM grid.events FINAL").result_rows[0][0]

    unknown = gridhub("replay", "nowhere", "--since", "2000-01-01", "-c", config)
    assert unknown.returncode == 2
    done = gridhub("replay", "police", "--since", "2000-01-01", "-c", config)
    assert done.returncode == 0, done.stderr
    assert "police.syrk" in done.stdout and "police.jq" in done.stdout

    now = datetime.now(CHINA_TZ).replace(microsecond=0, tzinfo=None)
    new_row = dict(county.syrk_rows[0], rkbh="R-NEW-1", gmsfhm=NEW_ID, xm="新 来", gxsj=now)
    police.upsert_syrk([new_row])
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
