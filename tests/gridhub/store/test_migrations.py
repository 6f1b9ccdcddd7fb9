"""The contract tables of outputs.md, created by migrate() on a fresh embedded store."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from gridhub.store.client import close_embedded
from gridhub.store.migrations import MIGRATIONS, migrate
from tests.cases.store_queries import query_rows

# Written from spec/outputs.md: column -> type the contract names ("" where it names none).
CONTRACT: dict[str, dict[str, str]] = {
    "resident": {
        "resident_key": "String",
        "id_number": "Nullable(String)",
        "name": "",
        "gender": "",
        "birth_date": "",
        "phone": "",
        "grid_code": "Nullable(String)",
        "community_code": "Nullable(String)",
        "address": "String",
        "placement": "String",
        "population_type": "String",
        "deregistered": "Bool",
        "is_party_member": "Bool",
        "party_branch": "String",
        "double_report_community": "Nullable(String)",
        "assistance": "Array(String)",
        "hotline_tickets": "UInt32",
        "hotline_open": "UInt32",
        "incidents": "UInt32",
        "sources": "Array(String)",
        "field_sources": "Map(String, String)",
        "conflicts": "Array(String)",
        "version": "",
        "updated_at": "",
    },
    "area": dict.fromkeys(
        (
            "grid_code",
            "grid_name",
            "community_code",
            "street_code",
            "residents",
            "floating_population",
            "deregistered",
            "party_members",
            "double_report_members",
            "assistance_recipients",
            "elderly_80_plus",
            "hotline_tickets_30d",
            "hotline_open",
            "incidents_30d",
            "volunteer_hours_30d",
            "unplaced_nearby",
            "updated_at",
        ),
        "",
    ),
    "events": {
        "source": "",
        "entity": "",
        "source_key": "",
        "event_time": "",
        "ingested_at": "",
        "resident_key": "Nullable(String)",
        "grid_code": "Nullable(String)",
        "payload": "",
    },
    "dead_letters": dict.fromkeys(("source", "entity", "reason", "raw", "received_at"), ""),
    "unlinked": dict.fromkeys(("source", "entity", "source_key", "why"), ""),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The process's one chdb store (chdb opens a single path per process at a time)."""
    close_embedded()
    store: Path = tmp_path_factory.mktemp("migrations") / "store"
    opened = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    yield opened
    opened.close()


def fresh_database() -> str:
    return f"grid_{uuid.uuid4().hex[:12]}"


def columns(client: Any, database: str, table: str) -> dict[str, str]:
    rows = query_rows(
        client,
        f"SELECT name, type FROM system.columns WHERE database = '{database}' "
        f"AND table = '{table}' ORDER BY position",
    )
    return {str(name): str(kind) for name, kind in rows}


def plain(kind: str) -> str:
    """The type as downstream queries see it: LowCardinality is storage, not meaning."""
    return re.sub(r"LowCardinality\((.*?)\)", r"\1", kind)


def test_migrate_creates_every_contract_table_with_every_column(client: Any) -> None:
    database = fresh_database()
    assert migrate(client, database) == [m.version for m in MIGRATIONS]
    for table, contract in CONTRACT.items():
        found = columns(client, database, table)
        missing = set(contract) - set(found)
        assert not missing, f"{database}.{table} lacks {sorted(missing)}"
        for column, kind in contract.items():
            if kind:
                assert plain(found[column]) == kind, f"{table}.{column} is {found[column]}"


def test_every_contract_table_replaces_replayed_rows(client: Any) -> None:
    database = fresh_database()
    migrate(client, database)
    engines = dict(
        query_rows(
            client,
            f"SELECT name, engine FROM system.tables WHERE database = '{database}'",
        )
    )
    for table in CONTRACT:
        assert engines[table] == "ReplacingMergeTree", table


def test_migrate_twice_applies_nothing_the_second_time(client: Any) -> None:
    database = fresh_database()
    first = migrate(client, database)
    assert first
    assert migrate(client, database) == []
    ledger = query_rows(
        client,
        f"SELECT version, count() FROM {database}.schema_migrations GROUP BY version "
        "ORDER BY version",
    )
    assert ledger == [(version, 1) for version in first]
    descriptions = query_rows(
        client, f"SELECT description FROM {database}.schema_migrations ORDER BY version"
    )
    assert [row[0] for row in descriptions] == [m.description for m in MIGRATIONS]


def test_migrations_are_numbered_upwards_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_birth_dates_before_1970_are_kept(client: Any) -> None:
    database = fresh_database()
    migrate(client, database)
    born = [date(1900, 1, 1), date(1935, 5, 6), date(1969, 12, 31), date(2001, 2, 3)]
    client.insert(
        f"{database}.resident",
        [[f"k{index}", day] for index, day in enumerate(born)],
        column_names=["resident_key", "birth_date"],
    )
    rows = query_rows(
        client, f"SELECT birth_date FROM {database}.resident FINAL ORDER BY resident_key"
    )
    assert [row[0] for row in rows] == born


def test_resident_is_read_with_final_one_row_per_key(client: Any) -> None:
    database = fresh_database()
    migrate(client, database)
    for version, name in ((1, "王芳"), (3, "王 芳"), (2, "王方")):
        client.insert(
            f"{database}.resident",
            [["k1", name, version]],
            column_names=["resident_key", "name", "version"],
        )
    assert query_rows(client, f"SELECT name, version FROM {database}.resident FINAL") == [
        ("王 芳", 3)
    ]


def test_unlinked_keeps_its_rows_and_hides_records_that_linked_later(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 3 moves ``unlinked`` onto an engine with ``is_deleted``: a store made
    before it keeps its rows, and a row written deleted later leaves ``FINAL``."""
    import gridhub.store.migrations as migrations

    database = fresh_database()
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:2])
    migrate(client, database)
    columns_before = ["source", "entity", "source_key", "event_time", "why", "payload"]
    old_row = ["hotline", "tickets", "T1", datetime(2026, 11, 1), "no phone", "{}"]
    other = ["hotline", "tickets", "T2", datetime(2026, 11, 1), "no phone", "{}"]
    client.insert(f"{database}.unlinked", [old_row, other], column_names=columns_before)
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
    assert migrate(client, database) == [m.version for m in MIGRATIONS[2:]]
    assert migrations._unlinked_with_deletes(client, database) is None  # again: no change
    assert "link_rule" in columns(client, database, "events")
    client.insert(
        f"{database}.unlinked",
        [["hotline", "tickets", "T1", "linked later", "{}", datetime(2026, 11, 2), 1]],
        column_names=[
            "source",
            "entity",
            "source_key",
            "why",
            "payload",
            "updated_at",
            "is_deleted",
        ],
    )
    waiting = query_rows(client, f"SELECT source_key FROM {database}.unlinked FINAL")
    assert waiting == [("T2",)]


def test_no_migration_takes_a_column_away_or_changes_its_type(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """outputs.md is a contract with downstream teams: each migration, statements and
    step alike, may add tables and columns, never drop, rename or retype one. Applied one
    at a time, every contract column of the step before is still there, of the same type."""
    import gridhub.store.migrations as migrations

    database = fresh_database()
    before: dict[str, dict[str, str]] = {}
    for upto in range(1, len(MIGRATIONS) + 1):
        monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:upto])
        migrate(client, database)
        now = {table: columns(client, database, table) for table in CONTRACT}
        for table, kept in before.items():
            lost = {name: kind for name, kind in kept.items() if now[table].get(name) != kind}
            assert not lost, f"migration {upto} breaks {table}: {lost}"
        before = now


def test_resident_by_grid_holds_each_resident_once_in_its_grid_before_and_after(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 5: residents stored before it are copied in their current grid only;
    later rows reach it through the feed, and a departure hides a resident in a grid it
    left. A grid's residents are then read without a full scan."""
    import gridhub.store.migrations as migrations

    database = fresh_database()
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:4])
    migrate(client, database)
    names = ["resident_key", "grid_code", "name", "version"]
    client.insert(
        f"{database}.resident",
        [["k1", "G1", "old", 1], ["k1", "G2", "moved", 2], ["k2", None, "unplaced", 1]],
        column_names=names,
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
    assert migrate(client, database) == [5]

    def by_grid() -> list[tuple[Any, ...]]:
        return query_rows(
            client,
            f"SELECT grid_code, resident_key, name FROM {database}.resident_by_grid FINAL "
            "ORDER BY resident_key",
        )

    assert by_grid() == [("G2", "k1", "moved"), (None, "k2", "unplaced")]
    client.insert(f"{database}.resident", [["k2", "G1", "placed", 2]], column_names=names)
    assert by_grid() == [("G2", "k1", "moved"), ("G1", "k2", "placed"), (None, "k2", "unplaced")]
    client.insert(
        f"{database}.resident_by_grid",
        [["k2", None, 2, 1]],
        column_names=["resident_key", "grid_code", "version", "is_deleted"],
    )
    assert by_grid() == [("G2", "k1", "moved"), ("G1", "k2", "placed")]
    plan = query_rows(
        client,
        f"EXPLAIN indexes = 1 SELECT * FROM {database}.resident_by_grid FINAL "
        "WHERE grid_code = 'G1'",
    )
    assert any("grid_code in ['G1', 'G1']" in str(line) for line in plan)  # the key is used
