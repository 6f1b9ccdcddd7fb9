"""Merged rows packed for the trip from a merge process to the store (``rows`` topic).

Only one process can hold the embedded store, and the merge is the costliest
stage, so by default it runs in processes of its own (``[hub] merge_processes``)
and sends what it built as one :class:`~gridhub.schemas.RowBatch` per batch of
person envelopes.

Each block is one table's rows as an Avro object container file, written with
the table's row schema (ResidentRecord, EventRow, UnlinkedRecord). ClickHouse
reads that format natively (``FORMAT Avro``), so the process that holds the
store inserts a block as it came, without touching a row in Python: measured
on the benchmark, decoding rows there cost the sink more than the inserts.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from fastavro import writer
from gridhub.schemas import decode, encode_dict
from gridhub.schemas.registry import default_registry
from gridhub.streams.sink import TABLES, BatchingSink

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
    registry = default_registry()
    for name, table_rows in by_schema.items():
        buffer = io.BytesIO()
        writer(buffer, registry.by_name(name).schema, table_rows)
        tables.append(name)
        blocks.append(buffer.getvalue())
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
