"""BatchingSink: encoded rows land in the contract tables, replays are absorbed, and
nothing is acknowledged before ClickHouse took it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from gridhub.schemas import decode, encode_dict
from gridhub.streams.row_batch import pack_rows, unpack_into
from gridhub.streams.sink import COLUMN_TYPES, TABLES, BatchingSink
from gridhub.streams.topology import unreadable_rows

from gridhub.errors import SinkBackpressure, Transient
from gridhub.store.client import close_embedded
from gridhub.store.migrations import migrate
from tests.cases.store_queries import query_rows

EVENT_TIME = datetime(2026, 10, 22, 1, 30, 5, tzinfo=UTC)
NOW = datetime(2026, 10, 22, 1, 31, 0, 250_000, tzinfo=UTC)

RESIDENT: dict[str, Any] = {
    "resident_key": "a3f1c2d4e5b6a7980123456789abcdef",
    "id_number": "320723193505061230",
    "name": "王芳",
    "gender": "男",
    "birth_date": date(1935, 5, 6),
    "phone": "051888123456",
    "grid_code": "320723100001003",
    "community_code": "320723100001",
    "address": "灌云县伊山镇幸福路18号幸福家园3栋",
    "placement": "address_id",
    "population_type": "流动",
    "deregistered": False,
    "is_party_member": False,
    "party_branch": "",
    "double_report_community": None,
    "assistance": ["低保"],
    "hotline_tickets": 2,
    "hotline_open": 1,
    "incidents": 1,
    "sources": ["police"],
    "field_sources": {"name": "police@2026-10-22T01:30:05+00:00"},
    "conflicts": [],
    "version": 1_700_000_000_000_000_000,
    "updated_at": NOW,
}
EVENT: dict[str, Any] = {
    "source": "police",
    "entity": "syrk",
    "source_key": "R320723000001",
    "event_time": EVENT_TIME,
    "ingested_at": NOW,
    "resident_key": RESIDENT["resident_key"],
    "grid_code": "320723100001003",
    "payload": '{"rkbh":"R320723000001"}',
    "link_rule": "id_number",
}
UNLINKED: dict[str, Any] = {
    "source": "police",
    "entity": "jq",
    "source_key": "J3207232026102200001",
    "event_time": EVENT_TIME,
    "why": "无有效身份证号且无唯一手机号 (no valid ID number and no unique phone)",
    "grid_code": None,
    "community_code": "320723100001",
    "payload": '{"jqbh":"J3207232026102200001"}',
    "updated_at": NOW,
    "is_deleted": 0,
}
DEAD: dict[str, Any] = {
    "source": "police",
    "entity": "syrk",
    "source_key": None,
    "reason": "公民身份号码校验位错误 (ID number check character is wrong)",
    "raw": b"\x00\x01not-a-record",
    "received_at": NOW,
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The process's one chdb store (chdb opens a single path per process at a time)."""
    close_embedded()
    store: Path = tmp_path_factory.mktemp("sink") / "store"
    opened = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    yield opened
    opened.close()


@pytest.fixture
def database(client: Any) -> str:
    name = f"grid_{uuid.uuid4().hex[:12]}"
    migrate(client, name)
    return name


def envelope(
    records: list[bytes], *, seq: int = 7, part: int = 0, parts: int = 1
) -> dict[str, Any]:
    """A decoded Envelope as the stream hands it to the sink."""
    return {
        "source": "police",
        "entity": "syrk",
        "seq": seq,
        "cursor": '{"gxsj":"2026-10-22 09:30:05","rkbh":"R320723000001"}',
        "produced_at": NOW,
        "records": records,
        "partition_count": parts,
        "part": part,
        "keys": [],
    }


def every_kind() -> list[bytes]:
    return [
        encode_dict("ResidentRecord", RESIDENT),
        encode_dict("EventRow", EVENT),
        encode_dict("UnlinkedRecord", UNLINKED),
        encode_dict("DeadLetter", DEAD),
    ]


def count(client: Any, database: str, table: str, *, final: bool = True) -> int:
    suffix = " FINAL" if final else ""
    return int(query_rows(client, f"SELECT count() FROM {database}.{table}{suffix}")[0][0])


def test_rows_of_every_kind_land_in_their_tables(client: Any, database: str) -> None:
    sink = BatchingSink(client, database)
    assert sink.add(envelope(every_kind())) == 4
    assert sink.pending_rows == 4
    assert sink.flush() == 4
    assert sink.pending_rows == 0
    assert sink.inserted == {"resident": 1, "events": 1, "unlinked": 1, "dead_letters": 1}

    resident_columns = ", ".join(TABLES["ResidentRecord"][1])
    (row,) = query_rows(client, f"SELECT {resident_columns} FROM {database}.resident FINAL")
    stored = dict(zip(TABLES["ResidentRecord"][1], row, strict=True))
    assert stored["updated_at"] == NOW.replace(tzinfo=None)
    assert stored == {**RESIDENT, "updated_at": stored["updated_at"]}

    (event,) = query_rows(
        client, f"SELECT source_key, event_time, resident_key, payload FROM {database}.events"
    )
    assert event == (
        "R320723000001",
        EVENT_TIME.replace(tzinfo=None),
        RESIDENT["resident_key"],
        EVENT["payload"],
    )
    (unlinked,) = query_rows(
        client,
        f"SELECT entity, source_key, why, grid_code, community_code FROM {database}.unlinked",
    )
    assert unlinked == ("jq", UNLINKED["source_key"], UNLINKED["why"], None, "320723100001")
    (dead,) = query_rows(
        client, f"SELECT source_key, reason, raw_hash, received_at FROM {database}.dead_letters"
    )
    raw_hash = hashlib.sha256(DEAD["raw"]).hexdigest()
    assert dead == ("", DEAD["reason"], raw_hash, NOW.replace(tzinfo=None))


def test_flushing_the_same_envelope_twice_keeps_one_row_per_key(client: Any, database: str) -> None:
    sink = BatchingSink(client, database)
    replayed = envelope(every_kind())
    sink.add(replayed)
    sink.flush()
    sink.add(replayed)
    sink.flush()
    assert sink.inserted["events"] == 2
    for table in ("resident", "events", "unlinked", "dead_letters"):
        assert count(client, database, table) == 1, table


def test_parts_are_reported_only_after_their_rows_are_stored(client: Any, database: str) -> None:
    seen: list[tuple[Any, ...]] = []

    def part_done(source: str, entity: str, seq: int, part: int, parts: int) -> None:
        stored = count(client, database, "events", final=False)
        seen.append((source, entity, seq, part, parts, stored))

    sink = BatchingSink(client, database, on_part_done=part_done)
    sink.add(envelope([encode_dict("EventRow", EVENT)], seq=41, part=1, parts=3))
    assert seen == []
    sink.flush()
    assert seen == [("police", "syrk", 41, 1, 3, 1)]
    sink.flush()  # nothing pending: no part is reported twice
    assert len(seen) == 1


def test_rows_built_in_process_are_stored_with_their_part(client: Any, database: str) -> None:
    seen: list[tuple[str, str, int, int, int]] = []
    sink = BatchingSink(client, database, on_part_done=lambda *part: seen.append(part))
    sink.add_rows([("ResidentRecord", RESIDENT), ("EventRow", EVENT)])
    sink.add_part("police", "syrk", 9, 0, 1)
    assert sink.flush() == 2
    assert seen == [("police", "syrk", 9, 0, 1)]
    assert count(client, database, "resident") == 1


def test_freshness_is_measured_from_the_source_time_of_new_records(
    client: Any, database: str
) -> None:
    """The merge names the source times of its new records (``MergedBatch.event_times``);
    a copy sent again after a claim is as old as its record and is not among them."""
    sink = BatchingSink(client, database)
    recent = datetime.now(UTC) - timedelta(seconds=30)
    packed = pack_rows([("EventRow", {**EVENT, "event_time": recent})], [], [_ms(recent)])
    unpack_into(sink, decode(packed)[1])
    sink.flush()
    (lag,) = sink.freshness
    assert 30 <= lag < 60
    sink.add_rows([("EventRow", {**EVENT, "event_time": recent - timedelta(days=30)})])
    sink.flush()  # rows stored, no new record among them
    assert len(sink.freshness) == 1


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def test_a_refused_insert_keeps_the_rows_until_a_later_flush_stores_them(client: Any) -> None:
    database = f"grid_{uuid.uuid4().hex[:12]}"  # not migrated yet: ClickHouse refuses
    seen: list[tuple[str, str, int, int, int]] = []
    sink = BatchingSink(client, database, on_part_done=lambda *part: seen.append(part))
    sink.add(envelope(every_kind(), seq=3))
    with pytest.raises(SinkBackpressure) as refused:
        sink.flush()
    assert isinstance(refused.value, Transient)
    assert refused.value.retry_after > 0
    assert "ClickHouse did not take" in str(refused.value)
    assert sink.pending_rows == 4
    assert seen == []

    migrate(client, database)
    assert sink.flush() == 4
    assert sink.pending_rows == 0
    assert seen == [("police", "syrk", 3, 0, 1)]
    for table in ("resident", "events", "unlinked", "dead_letters"):
        assert count(client, database, table) == 1, table


def test_a_dropped_table_is_backpressure_not_data_loss(client: Any, database: str) -> None:
    sink = BatchingSink(client, database)
    client.command(f"DROP TABLE {database}.events")
    sink.add(envelope([encode_dict("EventRow", EVENT)]))
    with pytest.raises(SinkBackpressure, match="events"):
        sink.flush()
    assert sink.pending_rows == 1
    client.command(f"DROP TABLE {database}.schema_migrations")  # so that migrate re-creates
    migrate(client, database)
    assert sink.flush() == 1
    assert count(client, database, "events") == 1


# --- RowBatch: rows from a merge process ------------------------------------------------


def test_a_row_batch_stores_the_same_rows_as_a_direct_insert(client: Any, database: str) -> None:
    left = {"resident_key": RESIDENT["resident_key"], "grid_code": "320723100009009"}
    departure = {**left, "version": RESIDENT["version"], "updated_at": NOW, "is_deleted": 1}
    rows = [
        ("ResidentRecord", RESIDENT),
        ("EventRow", EVENT),
        ("UnlinkedRecord", UNLINKED),
        ("GridDeparture", departure),
    ]
    parts = [("police", "syrk", 7, 0, 2), ("police", "syrk", 7, 1, 2)]
    name, batch = decode(pack_rows(rows, parts, [_ms(EVENT["event_time"])]))
    assert name == "RowBatch"
    assert batch["row_counts"] == [1, 1, 1, 1]

    done: list[tuple[str, str, int, int, int]] = []
    sink = BatchingSink(client, database, on_part_done=lambda *part: done.append(part))
    assert unpack_into(sink, batch) == 4
    assert sink.pending_rows == 4
    assert done == []  # nothing acknowledged before the insert
    assert sink.flush() == 4
    assert done == parts
    assert len(sink.freshness) == 1
    direct = f"{database}_direct"
    migrate(client, direct)
    reference = BatchingSink(client, direct)
    reference.add_rows(rows)
    reference.flush()
    for name, (table, columns) in TABLES.items():
        if name == "DeadLetter":
            continue
        select = f"SELECT {', '.join(columns)} FROM {{db}}.{table} FINAL"
        stored = query_rows(client, select.format(db=database))
        assert stored == query_rows(client, select.format(db=direct)), table
        assert len(stored) == 1


def test_a_row_batch_keeps_nulls_and_dates_and_a_replay_is_absorbed(
    client: Any, database: str
) -> None:
    resident = {**RESIDENT, "birth_date": None, "phone": None, "grid_code": None}
    elder = {**RESIDENT, "resident_key": "b" * 32, "birth_date": date(1921, 2, 28)}
    packed = pack_rows([("ResidentRecord", resident), ("ResidentRecord", elder)], [], [])
    for _ in range(2):  # a replayed RowBatch stores nothing new
        sink = BatchingSink(client, database)
        unpack_into(sink, decode(packed)[1])
        assert sink.flush() == 2
    stored = query_rows(
        client,
        f"SELECT resident_key, birth_date, phone, grid_code, updated_at "
        f"FROM {database}.resident FINAL ORDER BY resident_key",
    )
    assert stored == [
        (RESIDENT["resident_key"], None, None, None, NOW.replace(tzinfo=None)),
        (
            "b" * 32,
            date(1921, 2, 28),
            RESIDENT["phone"],
            RESIDENT["grid_code"],
            NOW.replace(tzinfo=None),
        ),
    ]


def test_the_column_types_of_native_blocks_are_the_migrated_tables_types(
    client: Any, database: str
) -> None:
    """A merge process writes Native blocks with types it declares itself; they must be
    the store's, or ClickHouse would convert or refuse them."""
    for name, (table, columns) in TABLES.items():
        if name == "DeadLetter":
            continue  # inserted from Python rows; clickhouse-connect asks the store
        stored = dict(
            query_rows(
                client,
                f"SELECT name, type FROM system.columns "
                f"WHERE database = '{database}' AND table = '{table}'",
            )
        )
        assert {c: COLUMN_TYPES[table][c] for c in columns} == {c: stored[c] for c in columns}


def test_a_row_batch_this_hub_cannot_read_is_a_dead_letter_with_what_to_do(
    client: Any, database: str
) -> None:
    junk = b"\x00\x7f\xff\xff\xffnot a RowBatch of this version"
    with pytest.raises(Exception) as unreadable:
        decode(junk)
    sink = BatchingSink(client, database)
    sink.add_rows([("DeadLetter", unreadable_rows(junk, unreadable.value))])
    assert sink.flush() == 1
    ((entity, reason, raw),) = query_rows(
        client, f"SELECT entity, reason, hex(raw) FROM {database}.dead_letters FINAL"
    )
    assert entity == "rows"
    assert "another version" in reason and "gridhub replay" in reason
    assert raw == junk.hex().upper()  # the bytes as they came, for whoever looks into it
