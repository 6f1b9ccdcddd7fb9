"""Civil-affairs rosters end to end: the newest complete month of each roster pays.

`gridhub run` pulls the police and civil databases and watches a roster folder
holding three months of the county's 高龄津贴 (GBK CSV) and 残疾人两项补贴 (XLSX)
rosters. The store must give each resident the current ``jzdx`` types plus
the allowance of every roster whose newest month lists them (outputs.md); a
row whose ID a spreadsheet mangled lands in the dead letters; a corrected
roster dropped under the same name while the hub runs takes the allowance
from the person it no longer lists.
"""

from __future__ import annotations

import signal
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from gridhub.simulators.civil_db import CivilDatabase
from gridhub.simulators.county import County
from gridhub.simulators.police_db import PoliceDatabase
from gridhub.simulators.rosters import RosterDirectory
from gridhub.streams.normalize import normalize_id_number, normalize_name, normalize_phone

from gridhub.demo import drop_rosters, write_config
from tests.e2e.conftest import HubProcess, open_store
from tests.e2e.test_three_sources import expected_assistance, phone_owners

pytestmark = pytest.mark.e2e


def listed(rows: list[dict[str, Any]], column: str) -> set[str]:
    """Valid IDs a roster lists (a mangled one identifies no one by itself)."""
    ids = (normalize_id_number(str(row[column])).value for row in rows)
    return {i for i in ids if i is not None}


def linked_by_phone(county: County) -> dict[tuple[str, Any], str]:
    """(file month, 序号) -> ID of each 高龄津贴 row whose ID a spreadsheet mangled but whose
    phone the records of exactly one resident show, under the same name (rule 2)."""
    owners = phone_owners(county)
    for rows in county.elderly_rosters.values():
        for row in rows:
            id18 = normalize_id_number(str(row["身份证号码"])).value
            phone = normalize_phone(row["联系电话"] or None).value
            if id18 and phone:
                owners[phone].add(id18)
    names = {p.id_number: p.name for p in county.persons}
    out = {}
    for month, rows in county.elderly_rosters.items():
        for row in rows:
            phone = normalize_phone(row["联系电话"] or None).value
            found = owners.get(phone or "", set())
            if normalize_id_number(str(row["身份证号码"])).value is None and len(found) == 1:
                (owner,) = found
                if normalize_name(row["姓名"]) == normalize_name(names.get(owner, "")):
                    out[(month, row["序号"])] = owner
    return out


def test_the_newest_roster_month_pays_and_a_correction_replaces_it(
    tmp_path: Path, county: County, police: PoliceDatabase, civil: CivilDatabase
) -> None:
    county.write_reference(tmp_path / "reference")
    inbox = drop_rosters(county, tmp_path / "inbox")
    newest = max(county.elderly_rosters)
    elderly = county.elderly_rosters[newest]
    disabled = listed(county.disability_rosters[max(county.disability_rosters)], "身份证号")
    assert len(listed(elderly, "身份证号码")) > 2 and disabled
    mangled = [row for rows in county.elderly_rosters.values() for row in rows
               if normalize_id_number(str(row["身份证号码"])).value is None]  # fmt: skip
    assert mangled, "the generator mangles an ID in each month"
    dropped = next(row for row in elderly if normalize_id_number(row["身份证号码"]).value)
    dropped_id = normalize_id_number(dropped["身份证号码"]).value
    config = write_config(tmp_path, police.dsn, civil.dsn, roster_dir=inbox)
    hub = HubProcess(config)
    try:
        hub.start()
        status = hub.wait_caught_up()
        rosters = status["sources"]["civil.rosters"]
        assert rosters["healthy"] and rosters["positions"]["files"] == len(list(inbox.glob("*.ok")))
        published = rosters["records"]
        time.sleep(1.1)  # the corrected file's marker must be newer than the first one's
        corrected = [row for row in elderly if row is not dropped]
        RosterDirectory(inbox).drop_elderly(newest, corrected)
        hub.wait_for(
            lambda s: s["sources"]["civil.rosters"]["records"] > published and s["caught_up"]
        )
        assert hub.stop(signal.SIGTERM) == 0
    finally:
        hub.kill()

    by_phone = linked_by_phone(county)
    assert by_phone, "a mangled row whose phone rule 2 links"
    paid_elderly = listed(corrected, "身份证号码")
    paid_elderly |= {
        by_phone[(newest, r["序号"])] for r in corrected if (newest, r["序号"]) in by_phone
    }
    assert dropped_id not in paid_elderly
    expected = {i: set(a) for i, a in expected_assistance(county).items()}
    for id_number in paid_elderly:
        expected.setdefault(id_number, set()).add("高龄津贴")
    for id_number in disabled:
        expected.setdefault(id_number, set()).add("残疾人补贴")
    with closing(open_store(tmp_path)) as client:
        rows = client.query(
            "SELECT id_number, assistance FROM grid.resident FINAL WHERE has(sources, 'civil')"
        ).result_rows
        stored = {id_number: set(assistance) for id_number, assistance in rows}
        assert dropped_id in stored and "高龄津贴" not in stored[dropped_id]
        listed_anywhere = {
            i
            for rows_of_month in [*county.elderly_rosters.values()]
            for i in listed(rows_of_month, "身份证号码")
        } | {
            i
            for rows_of_month in county.disability_rosters.values()
            for i in listed(rows_of_month, "身份证号")
        }
        for id_number in listed_anywhere | set(by_phone.values()):
            expected.setdefault(id_number, set())  # listed once: known to civil affairs
        assert stored == expected
        letters = client.query(
            "SELECT entity, reason FROM grid.dead_letters FINAL WHERE source = 'civil'"
        ).result_rows
        scientific = [reason for entity, reason in letters if entity == "roster_elderly"]
        assert len(scientific) >= len(mangled) - len(by_phone)
        assert all("科学计数法" in r or "scientific" in r.lower() for r in scientific), scientific
