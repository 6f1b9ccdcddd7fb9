"""Police and civil affairs together: one resident per person, with their assistance.

`gridhub run` pulls the MariaDB and PostgreSQL simulators of one county; the
store must hold one row per resident with the civil facts merged in, as
identity.md and outputs.md define them (soft-deleted rows contribute nothing;
only assistance not ended counts).
"""

from __future__ import annotations

import signal
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest
from gridhub.simulators.civil_db import CivilDatabase
from gridhub.simulators.county import County
from gridhub.simulators.police_db import PoliceDatabase
from gridhub.streams.normalize import CHINA_TZ, normalize_id_number

from gridhub.demo import write_config
from tests.e2e.conftest import HubProcess, open_store

pytestmark = pytest.mark.e2e


@pytest.fixture
def civil(county: County) -> Iterator[CivilDatabase]:
    with CivilDatabase() as database:
        database.load(county.jzdx_rows)
        yield database


def expected_assistance(county: County) -> dict[str, set[str]]:
    """Per 18-character ID: the jzdx types current today, from the generator's rows."""
    today = datetime.now(CHINA_TZ).date()
    current: dict[str, set[str]] = defaultdict(set)
    for row in county.jzdx_rows:
        id18 = normalize_id_number(row["sfzh"]).value
        if id18 is None or row["deleted"]:
            continue
        current[id18]  # a live row makes the person a civil-affairs resident
        if row["jsrq"] is None or row["jsrq"] > today:
            current[id18].add(row["jzlx"])
    return current


def test_civil_rows_join_the_police_residents(
    tmp_path: Path, county: County, police: PoliceDatabase, civil: CivilDatabase
) -> None:
    county.write_reference(tmp_path / "reference")
    hub = HubProcess(write_config(tmp_path, police.dsn, civil.dsn))
    try:
        hub.start()
        status = hub.wait_caught_up()
        assert status["sources"]["civil"]["records"] == len(county.jzdx_rows)
        assert hub.stop(signal.SIGTERM) == 0
    finally:
        hub.kill()
    expected = expected_assistance(county)
    assert expected and any(expected.values())
    with closing(open_store(tmp_path)) as client:
        rows = client.query(
            "SELECT id_number, assistance, sources FROM grid.resident FINAL "
            "WHERE has(sources, 'civil')"
        ).result_rows
        stored = {id_number: (set(assistance), sources) for id_number, assistance, sources in rows}
        assert {i: a for i, (a, _) in stored.items()} == dict(expected)
        police_ids = set(county.truth_police().residents)
        for id_number, (_, sources) in stored.items():
            assert sources == (["civil", "police"] if id_number in police_ids else ["civil"])
        events = client.query(
            "SELECT count() FROM grid.events FINAL WHERE source = 'civil'"
        ).result_rows[0][0]
        assert events == len(county.jzdx_rows)
