"""The civil-affairs simulator against the real local PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from gridhub.simulators.civil_db import CivilDatabase
from gridhub.simulators.county import generate_county


def jzdx_row(sfzh: str = "11010519491231002X", **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sfzh": sfzh, "xm": "王芳", "jzlx": "低保", "jtrk": 2, "bzje": Decimal("1560.00"),
        "ksrq": date(2023, 3, 1), "jsrq": None, "sqdm": "320723100001",
        "jtzz": "伊山镇幸福家园3号楼二单元", "lxdh": "0518-88123456", "hzsfzh": None,
        "deleted": False,
    }  # fmt: skip
    row.update(fields)
    return row


@pytest.fixture
def db() -> Iterator[CivilDatabase]:
    with CivilDatabase() as database:
        yield database


def fetch(db: CivilDatabase, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        rows: list[tuple[Any, ...]] = conn.execute(sql, list(args)).fetchall()
        return rows


def test_table_has_exactly_the_spec_columns_and_a_trigger(db: CivilDatabase) -> None:
    columns = fetch(
        db,
        "SELECT column_name, data_type, character_maximum_length, numeric_precision,"
        " numeric_scale, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = 'jzdx' ORDER BY ordinal_position",
    )
    assert columns == [
        ("id", "bigint", None, 64, 0, "NO"),
        ("sfzh", "character varying", 18, None, None, "NO"),
        ("xm", "character varying", 50, None, None, "NO"),
        ("jzlx", "character varying", 10, None, None, "NO"),
        ("jtrk", "integer", None, 32, 0, "NO"),
        ("bzje", "numeric", None, 10, 2, "NO"),
        ("ksrq", "date", None, None, None, "NO"),
        ("jsrq", "date", None, None, None, "YES"),
        ("sqdm", "character", 12, None, None, "NO"),
        ("jtzz", "character varying", 200, None, None, "NO"),
        ("lxdh", "character varying", 30, None, None, "YES"),
        ("hzsfzh", "character varying", 18, None, None, "YES"),
        ("deleted", "boolean", None, None, None, "NO"),
        ("updated_at", "timestamp with time zone", None, None, None, "NO"),
    ]
    assert fetch(db, "SELECT pg_get_serial_sequence('public.jzdx', 'id') IS NOT NULL") == [(True,)]
    triggers = fetch(
        db,
        "SELECT event_manipulation FROM information_schema.triggers"
        " WHERE event_object_table = 'jzdx' ORDER BY 1",
    )
    assert triggers == [("INSERT",), ("UPDATE",)]
    assert db.dsn == f"postgresql://postgres@127.0.0.1:5432/{db.name}"
    assert db.name.startswith("mz_")


def test_load_round_trips_generated_rows(db: CivilDatabase) -> None:
    county = generate_county(2500, seed=5)
    ids = db.load(county.jzdx_rows)
    assert len(ids) == len(set(ids)) == len(county.jzdx_rows)
    with db.connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        stored = cur.execute("SELECT * FROM public.jzdx ORDER BY id").fetchall()
    for original, row in zip(county.jzdx_rows, stored, strict=True):
        assert {k: row[k] for k in original} == original
        assert row["updated_at"].tzinfo is not None
    assert db.load([]) == []


def test_trigger_stamps_every_write(db: CivilDatabase) -> None:
    (row_id,) = db.upsert([jzdx_row()])
    (first,) = fetch(db, "SELECT updated_at FROM public.jzdx WHERE id = %s", row_id)[0]
    time.sleep(0.01)
    db.upsert([{"id": row_id, "jsrq": date(2025, 1, 31)}])
    second, jsrq, xm = fetch(db, "SELECT updated_at, jsrq, xm FROM public.jzdx")[0]
    assert second > first and jsrq == date(2025, 1, 31) and xm == "王芳"
    time.sleep(0.01)
    db.soft_delete([row_id])
    third, deleted = fetch(db, "SELECT updated_at, deleted FROM public.jzdx")[0]
    assert third > second and deleted is True
    with pytest.raises(KeyError):
        db.upsert([{"id": row_id + 100, "xm": "李四"}])


def test_late_transaction_commits_an_older_stamp_after_a_newer_row(db: CivilDatabase) -> None:
    late = db.late_transaction()
    (late_id,) = late.upsert([jzdx_row("320723198001010014")])
    time.sleep(0.05)
    (meanwhile_id,) = db.upsert([jzdx_row("320723199001010016")])
    assert [r[0] for r in fetch(db, "SELECT id FROM public.jzdx")] == [meanwhile_id]
    late.commit()
    stamps = dict(fetch(db, "SELECT id, updated_at FROM public.jzdx"))
    assert stamps[late_id] == late.started_at
    assert stamps[late_id] < stamps[meanwhile_id]


def test_kill_connections_and_drop_with_readers_attached() -> None:
    database = CivilDatabase()
    database.create()
    reader = database.connect()
    assert database.kill_connections() == 1
    with pytest.raises(psycopg.OperationalError):
        reader.execute("SELECT 1")
    reader.close()
    database.upsert([jzdx_row()])  # the simulator's own connection survives
    other = database.connect()
    database.drop()
    assert other.closed or other.broken or _fails(other)
    other.close()
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database.name])
        assert exists.fetchall() == []


def _fails(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False
