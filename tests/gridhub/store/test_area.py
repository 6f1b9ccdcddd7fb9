"""``grid.area``: every count of outputs.md, computed by the embedded ClickHouse engine.

Hand-made rows of ``grid.resident``, ``grid.events`` and ``grid.unlinked`` (as the
merge writes them) on a two-community map; each count is checked against what
outputs.md says it counts, and a refresh writes only the grids that changed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from gridhub.reference import load_reference
from gridhub.store.area import COUNTS, load_grid_map, refresh_area
from gridhub.store.client import close_embedded
from gridhub.store.migrations import migrate

REF = load_reference(Path(__file__).resolve().parents[2] / "cases" / "reference")
G1, G2 = "320723100001001", "320723100001002"
NOW = datetime.now(UTC)
TODAY = (NOW + timedelta(hours=8)).date()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The process's one chdb store (chdb opens a single path per process at a time)."""
    close_embedded()
    opened = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path_factory.mktemp('area')}/s")
    yield opened
    opened.close()


@pytest.fixture
def db(client: Any) -> str:
    name = f"grid_{uuid.uuid4().hex[:12]}"
    migrate(client, name)
    load_grid_map(client, name, REF)
    return name


def resident(key: str, grid: str | None, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "resident_key": key,
        "id_number": None,
        "name": "",
        "gender": "",
        "birth_date": date(1980, 1, 1),
        "phone": None,
        "grid_code": grid,
        "community_code": grid[:12] if grid else None,
        "address": "",
        "placement": "address_id" if grid else "unplaced",
        "population_type": "户籍",
        "deregistered": False,
        "is_party_member": False,
        "party_branch": "",
        "double_report_community": None,
        "assistance": [],
        "hotline_tickets": 0,
        "hotline_open": 0,
        "incidents": 0,
        "sources": ["police"],
        "field_sources": {},
        "conflicts": [],
        "version": 1,
        "updated_at": NOW,
    }
    row.update(changes)
    return row


def event(entity: str, key: str, payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    source = {"tickets": "hotline", "jq": "police", "activities": "party"}[entity]
    row = {
        "source": source,
        "entity": entity,
        "source_key": key,
        "event_time": NOW - timedelta(days=1),
        "ingested_at": NOW,
        "resident_key": None,
        "grid_code": None,
        "payload": json.dumps(payload, ensure_ascii=False),
    }
    row.update(changes)
    return row


def insert(client: Any, db: str, table: str, rows: list[dict[str, Any]]) -> None:
    names = list(rows[0])
    client.insert(f"{db}.{table}", [[r[n] for n in names] for r in rows], column_names=names)


def area(client: Any, db: str) -> dict[str, dict[str, Any]]:
    result = client.query(f"SELECT * FROM {db}.area FINAL")
    return {row[0]: dict(zip(result.column_names, row, strict=True)) for row in result.result_rows}


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_every_count_reads_as_outputs_md_says(client: Any, db: str) -> None:
    eighty = TODAY.replace(year=TODAY.year - 80)
    insert(client, db, "resident", [
        resident("r1", G1, population_type="流动", birth_date=eighty, is_party_member=True,
                 double_report_community=G1[:12], hotline_tickets=1, hotline_open=1),
        resident("r2", G1, deregistered=True, assistance=["低保"],
                 birth_date=eighty + timedelta(days=1)),
        resident("r3", G2, is_party_member=True, double_report_community="320723999999"),
        resident("r4", None),
    ])  # fmt: skip
    old = NOW - timedelta(days=40)
    insert(client, db, "events", [
        # linked to r1: counts in r1's grid, whatever its own placement said
        event("tickets", "T1", {"createTime": ms(NOW), "status": "受理"},
              resident_key="r1", grid_code=G2),
        # unlinked, placed in G2; an older version of it was open and recent
        event("tickets", "T2", {"createTime": ms(old), "status": "受理"}, grid_code=G2,
              event_time=NOW - timedelta(days=3)),
        event("tickets", "T2", {"createTime": ms(old), "status": "办结"}, grid_code=G2),
        event("jq", "J1", {"bjsj": (NOW + timedelta(hours=8) - timedelta(days=2))
                           .strftime("%Y-%m-%d %H:%M:%S")}, grid_code=G1),
        event("jq", "J2", {"bjsj": (NOW + timedelta(hours=8) - timedelta(days=31))
                           .strftime("%Y-%m-%d %H:%M:%S")}, grid_code=G1),
        event("activities", "A1", {"hours": 2.5, "occurredAt": NOW.isoformat()}, grid_code=G2),
        event("activities", "A2", {"hours": 0.0, "occurredAt": NOW.isoformat()}, grid_code=G2),
        event("activities", "A3", {"hours": 4.0, "occurredAt": old.isoformat()}, grid_code=G2),
    ])  # fmt: skip
    insert(client, db, "unlinked", [
        {"source": "hotline", "entity": "tickets", "source_key": f"T{n}", "event_time": NOW,
         "why": "", "grid_code": None, "community_code": G1[:12], "payload": "{}",
         "updated_at": NOW}
        for n in (7, 8)
    ])  # fmt: skip
    assert refresh_area(client, db) == len(REF.grids)  # the first refresh writes every grid
    rows = area(client, db)
    assert set(rows) == set(REF.grids)
    one, two = rows[G1], rows[G2]
    assert (one["grid_name"], one["community_code"]) == (
        REF.grids[G1].name,
        REF.grids[G1].community_code,
    )
    expected_one = {
        "residents": 2,
        "floating_population": 1,
        "deregistered": 1,
        "party_members": 1,
        "double_report_members": 1,
        "assistance_recipients": 1,
        "elderly_80_plus": 1,  # r2 turns 80 tomorrow
        "hotline_tickets_30d": 1,
        "hotline_open": 1,
        "incidents_30d": 1,
        "volunteer_hours_30d": 0.0,
        "unplaced_nearby": 2,
    }
    assert {name: one[name] for name in COUNTS} == expected_one
    assert two["residents"] == 1 and two["party_members"] == 1
    assert two["double_report_members"] == 0  # reported to another community
    assert (two["hotline_tickets_30d"], two["hotline_open"]) == (0, 0)  # old and finished
    assert two["volunteer_hours_30d"] == 2.5  # voided and older activities add nothing
    assert two["unplaced_nearby"] == 2  # a community figure: every grid of it carries it


def test_a_refresh_writes_only_the_grids_whose_counts_changed(client: Any, db: str) -> None:
    insert(client, db, "resident", [resident("r1", G1), resident("r2", G1)])
    refresh_area(client, db, version=1)
    assert refresh_area(client, db, version=2) == 0  # nothing changed: nothing written
    insert(client, db, "resident", [resident("r2", G2, version=2)])  # moved by a reload
    assert refresh_area(client, db, version=3) == 2
    rows = area(client, db)
    assert (rows[G1]["residents"], rows[G2]["residents"]) == (1, 1)
    assert {code for code, row in rows.items() if row["version"] == 3} == {G1, G2}
