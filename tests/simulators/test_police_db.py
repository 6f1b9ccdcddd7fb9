"""The public-security simulator against the real local MariaDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pymysql
import pytest
from gridhub.simulators.county import generate_county
from gridhub.simulators.police_db import PoliceDatabase

T = datetime(2025, 6, 1, 9, 30, 0)


def syrk_row(rkbh: str, gxsj: datetime, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "rkbh": rkbh, "gmsfhm": "11010519491231002X", "xm": "阿依古丽·买买提", "xb": "2",
        "csrq": "19491231", "lxdh": "0518-88123456", "hjdz": None,
        "jzdz": "灌云县伊山镇幸福路18号幸福家园3栋", "dzbm": None, "rylb": "01",
        "zrq": "320723510000-01", "zxbz": "0", "gxsj": gxsj,
    }  # fmt: skip
    row.update(fields)
    return row


@pytest.fixture
def db() -> Iterator[PoliceDatabase]:
    with PoliceDatabase() as database:
        yield database


def query(db: PoliceDatabase, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_tables_have_exactly_the_spec_columns(db: PoliceDatabase) -> None:
    columns = query(
        db,
        "SELECT table_name, column_name, column_type, is_nullable, character_set_name"
        " FROM information_schema.COLUMNS WHERE table_schema = %s"
        " ORDER BY table_name, ordinal_position",
        db.name,
    )
    syrk = [(c[1], c[2], c[3]) for c in columns if c[0] == "syrk"]
    assert syrk == [
        ("rkbh", "varchar(20)", "NO"), ("gmsfhm", "varchar(18)", "NO"),
        ("xm", "varchar(50)", "NO"), ("xb", "char(1)", "NO"), ("csrq", "char(8)", "NO"),
        ("lxdh", "varchar(30)", "YES"), ("hjdz", "varchar(200)", "YES"),
        ("jzdz", "varchar(200)", "NO"), ("dzbm", "varchar(32)", "YES"),
        ("rylb", "char(2)", "NO"), ("zrq", "varchar(20)", "NO"), ("zxbz", "char(1)", "NO"),
        ("gxsj", "datetime", "NO"),
    ]  # fmt: skip
    jq = [(c[1], c[2], c[3]) for c in columns if c[0] == "jq"]
    assert jq == [
        ("jqbh", "varchar(30)", "NO"), ("bjsj", "datetime", "NO"), ("jqlb", "varchar(4)", "NO"),
        ("jqlbmc", "varchar(20)", "NO"), ("fadz", "varchar(200)", "NO"),
        ("zrq", "varchar(20)", "NO"), ("jd", "decimal(10,6)", "YES"),
        ("wd", "decimal(10,6)", "YES"), ("bjrxm", "varchar(50)", "YES"),
        ("bjrdh", "varchar(30)", "YES"), ("bjrsfzh", "varchar(18)", "YES"),
        ("jqzt", "varchar(10)", "NO"), ("gxsj", "datetime", "NO"),
    ]  # fmt: skip
    assert {c[4] for c in columns if c[4]} == {"utf8mb4"}
    keys = query(
        db,
        "SELECT table_name, index_name, column_name FROM information_schema.STATISTICS"
        " WHERE table_schema = %s ORDER BY table_name, index_name, seq_in_index",
        db.name,
    )
    assert ("syrk", "PRIMARY", "rkbh") in keys and ("jq", "PRIMARY", "jqbh") in keys
    assert {(t, c) for t, i, c in keys if i != "PRIMARY"} == {("syrk", "gxsj"), ("jq", "gxsj")}


def test_dsn_names_the_database_and_drop_removes_it() -> None:
    database = PoliceDatabase()
    database.create()
    assert database.dsn == f"mysql://root@127.0.0.1:3306/{database.name}"
    assert database.name.startswith("ga_rkxx_")
    database.drop()
    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    try:
        with conn.cursor() as cur:
            assert cur.execute("SHOW DATABASES LIKE %s", (database.name,)) == 0
    finally:
        conn.close()


def test_load_round_trips_generated_rows(db: PoliceDatabase) -> None:
    county = generate_county(2500, seed=5)
    db.load(county.syrk_rows, county.jq_rows)
    assert query(db, "SELECT COUNT(*) FROM syrk")[0][0] == len(county.syrk_rows)
    assert query(db, "SELECT COUNT(*) FROM jq")[0][0] == len(county.jq_rows)
    conn = db.connect()
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SELECT * FROM syrk")
            stored = {row["rkbh"]: row for row in cur.fetchall()}
            cur.execute("SELECT * FROM jq WHERE jd IS NOT NULL LIMIT 1")
            incident = cur.fetchone()
    finally:
        conn.close()
    assert all(stored[row["rkbh"]] == row for row in county.syrk_rows)
    assert incident is not None and isinstance(incident["jd"], Decimal)


def test_upsert_replaces_a_row_with_its_latest_state(db: PoliceDatabase) -> None:
    db.upsert_syrk([syrk_row("R1", T), syrk_row("R2", T)])
    db.upsert_syrk([syrk_row("R1", T + timedelta(seconds=1), zxbz="1")])
    assert query(db, "SELECT rkbh, zxbz, gxsj FROM syrk ORDER BY rkbh") == [
        ("R1", "1", T + timedelta(seconds=1)),
        ("R2", "0", T),
    ]
    incident = {
        "jqbh": "J1", "bjsj": T, "jqlb": "05", "jqlbmc": "求助", "fadz": "幸福路18号附近",
        "zrq": "320723510000-01", "jd": Decimal("119.200001"), "wd": Decimal("34.300002"),
        "bjrxm": None, "bjrdh": None, "bjrsfzh": None, "jqzt": "已受理", "gxsj": T,
    }  # fmt: skip
    db.upsert_jq([incident])
    db.upsert_jq([{**incident, "jqzt": "已结案", "gxsj": T + timedelta(minutes=5)}])
    assert query(db, "SELECT jqzt, jd FROM jq") == [("已结案", Decimal("119.200001"))]


def test_late_transaction_row_appears_after_newer_rows_were_read(db: PoliceDatabase) -> None:
    reader = db.connect()
    try:
        late = db.late_transaction()
        late.upsert_syrk([syrk_row("LATE", T)])
        db.upsert_syrk([syrk_row("NEWER", T + timedelta(seconds=5))])
        with reader.cursor() as cur:
            cur.execute("SELECT rkbh FROM syrk WHERE gxsj >= %s ORDER BY gxsj", (T,))
            assert [r[0] for r in cur.fetchall()] == ["NEWER"]
        late.commit()
        with reader.cursor() as cur:
            cur.execute("SELECT rkbh FROM syrk WHERE gxsj >= %s ORDER BY gxsj", (T,))
            assert [r[0] for r in cur.fetchall()] == ["LATE", "NEWER"]
    finally:
        reader.close()


def test_late_transaction_rolls_back_on_error(db: PoliceDatabase) -> None:
    with pytest.raises(RuntimeError), db.late_transaction() as late:
        late.upsert_syrk([syrk_row("GONE", T)])
        raise RuntimeError("writer crashed")
    assert query(db, "SELECT COUNT(*) FROM syrk") == [(0,)]


def test_kill_connections_breaks_a_running_query(db: PoliceDatabase) -> None:
    victim = db.connect()
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            with victim.cursor() as cur:
                cur.execute("SELECT SLEEP(20)")
        except pymysql.err.OperationalError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert db.kill_connections() >= 1
    worker.join(timeout=10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert isinstance(outcome.get("error"), pymysql.err.OperationalError)
    victim.close()
    db.upsert_syrk([syrk_row("AFTER", T)])  # the simulator itself carries on
    assert query(db, "SELECT COUNT(*) FROM syrk") == [(1,)]
