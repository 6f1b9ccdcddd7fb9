"""Merged rows packed for the trip from a merge process to the store (``rows`` topic).

Only one process can hold the embedded store, and the merge is the costliest
stage, so by default it runs in processes of its own (``[hub] merge_processes``)
and sends what it built as one :class:`~gridhub.schemas.RowBatch` per batch of
person envelopes.

Each block is one table's rows in ClickHouse's columnar ``Native`` format,
serialised by clickhouse-connect with the column types of
:data:`~gridhub.streams.sink.COLUMN_TYPES`, so the process that holds the store
inserts a block as it came, without touching a row in Python (measured on the
benchmark, decoding rows there cost the sink more than the inserts). Against
Avro object container files, which earlier versions sent, Native measured
faster to write here and about twice as fast to insert (50,000 resident rows:
0.61 s against 0.70 s, 0.18 s against 0.32 s).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from gridhub.schemas import decode, encode_dict
from gridhub.streams.sink import COLUMN_TYPES, TABLES, BatchingSink

Part = tuple[str, str, int, int, int]
"""A connector batch part: (source, entity, seq, part, parts)."""


def pack_rows(
    rows: list[tuple[str, dict[str, Any]]], parts: list[Part], event_times: list[int]
) -> bytes:
    """One RowBatch in the wire format: the rows per table, and the parts they cover."""
    by_schema: dict[str, list[dict[str, Any]]] = {}
    for name, row in rows:
        by_schema.setdefault(name, []).append(row)
    tables: list[str] = []
    blocks: list[bytes] = []
    counts: list[int] = []
    for name, table_rows in by_schema.items():
        table, columns = TABLES[name]
        tables.append(name)
        blocks.append(native_block(table, columns, table_rows))
        counts.append(len(table_rows))
    acks = [
        encode_dict(
            "BatchAck",
            {"source": source, "entity": entity, "seq": seq, "part": part, "parts": total},
        )
        for source, entity, seq, part, total in parts
    ]
    return encode_dict(
        "RowBatch",
        {
            "produced_at": datetime.now(UTC),
            "tables": tables,
            "blocks": blocks,
            "row_counts": counts,
            "acks": acks,
            "event_time_ms": event_times,
        },
    )


def native_block(table: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    """``rows`` as ClickHouse ``Native`` data for ``INSERT INTO table (columns)``.

    Built column by column, with times already as DateTime64(3) ticks: a merge batch
    repeats the same few stamps, and clickhouse-connect converts each datetime value
    on its own (this halved the cost for event rows on the benchmark's data).
    """
    types = COLUMN_TYPES[table]
    data: list[list[Any]] = []
    for column in columns:
        values: list[Any] = [row.get(column) for row in rows]
        data.append(_millis(values) if types[column].startswith("DateTime64(3") else values)
    context = InsertContext(
        table,
        columns,
        [get_from_name(types[column]) for column in columns],
        data=data,
        column_oriented=True,
    )
    encoded = b"".join(NativeTransform.build_insert(context))
    if context.insert_exception is not None:
        raise context.insert_exception
    # clickhouse-connect writes the statement before the first block, for its own HTTP
    # body; the block alone is what FORMAT Native reads.
    statement, newline, block = encoded.partition(b" FORMAT Native\n")
    if not newline or not statement.startswith(b"INSERT INTO "):
        raise ValueError(f"unexpected Native insert data for {table}: {encoded[:60]!r}")
    return block


def _millis(values: list[Any]) -> list[int]:
    """Aware datetimes as epoch milliseconds (DateTime64(3) ticks), each distinct one
    converted once."""
    seen: dict[datetime, int] = {}
    out: list[int] = []
    for value in values:
        ticks = seen.get(value)
        if ticks is None:
            ticks = seen[value] = (
                round(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)
            )
        out.append(ticks)
    return out


def unpack_into(sink: BatchingSink, batch: dict[str, Any]) -> int:
    """Queue a decoded RowBatch's blocks and parts on the sink; returns its rows."""
    for name, block, count in zip(
        batch["tables"], batch["blocks"], batch["row_counts"], strict=True
    ):
        table, columns = TABLES[name]
        sink.add_block(table, columns, block, count)
    sink.event_time_ms.extend(batch["event_time_ms"])
    for raw in batch["acks"]:
        _, ack = decode(raw)
        sink.add_part(ack["source"], ack["entity"], ack["seq"], ack["part"], ack["parts"])
    return int(sum(batch["row_counts"]))
