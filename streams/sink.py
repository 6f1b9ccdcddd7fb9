"""The ClickHouse sink: rows go into the store, and only then are offsets committed.

Used by the merge stage (resident, event and unlinked rows it builds) and by
the dead-letter stage (``dead_letters`` topic). :class:`BatchingSink` collects
rows per table (:meth:`add_rows`, or :meth:`add` for an Envelope of encoded
rows) and :meth:`flush` inserts each table's rows in one columnar insert. The
stream acknowledges its Kafka messages only after :meth:`flush` returned, so a
crash between insert and commit replays the batch, which the tables absorb:
every table is a ReplacingMergeTree keyed by what makes a row the same row.
After the insert, each envelope part is reported to the checkpoints, which on
the embedded broker is what lets a connector move its resume point.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from gridhub.schemas import decode

from gridhub.errors import SinkBackpressure
from gridhub.logs import get_logger
from gridhub.metrics import SinkMetrics

log = get_logger("streams.sink")

TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ResidentRecord": (
        "resident",
        (
            "resident_key",
            "id_number",
            "name",
            "gender",
            "birth_date",
            "phone",
            "grid_code",
            "community_code",
            "address",
            "placement",
            "population_type",
            "deregistered",
            "is_party_member",
            "party_branch",
            "double_report_community",
            "assistance",
            "hotline_tickets",
            "hotline_open",
            "incidents",
            "sources",
            "field_sources",
            "conflicts",
            "version",
            "updated_at",
        ),
    ),
    "EventRow": (
        "events",
        (
            "source",
            "entity",
            "source_key",
            "event_time",
            "ingested_at",
            "resident_key",
            "grid_code",
            "payload",
            "link_rule",
        ),
    ),
    "UnlinkedRecord": (
        "unlinked",
        (
            "source",
            "entity",
            "source_key",
            "event_time",
            "why",
            "grid_code",
            "community_code",
            "payload",
            "updated_at",
            "is_deleted",
        ),
    ),
    "GridDeparture": (
        "resident_by_grid",
        ("resident_key", "grid_code", "version", "updated_at", "is_deleted"),
    ),
    "DeadLetter": (
        "dead_letters",
        ("source", "entity", "source_key", "reason", "raw", "raw_hash", "received_at"),
    ),
}
"""Schema name -> (table, columns in insert order)."""

_RESIDENT_TYPES = {
    "resident_key": "String",
    "id_number": "Nullable(String)",
    "name": "String",
    "gender": "LowCardinality(String)",
    "birth_date": "Nullable(Date32)",
    "phone": "Nullable(String)",
    "grid_code": "Nullable(String)",
    "community_code": "Nullable(String)",
    "address": "String",
    "placement": "LowCardinality(String)",
    "population_type": "LowCardinality(String)",
    "deregistered": "Bool",
    "is_party_member": "Bool",
    "party_branch": "String",
    "double_report_community": "Nullable(String)",
    "assistance": "Array(LowCardinality(String))",
    "hotline_tickets": "UInt32",
    "hotline_open": "UInt32",
    "incidents": "UInt32",
    "sources": "Array(LowCardinality(String))",
    "field_sources": "Map(String, String)",
    "conflicts": "Array(String)",
    "version": "UInt64",
    "updated_at": "DateTime64(3, 'UTC')",
}
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "resident": _RESIDENT_TYPES,
    "resident_by_grid": {**_RESIDENT_TYPES, "is_deleted": "UInt8"},
    "events": {
        "source": "LowCardinality(String)",
        "entity": "LowCardinality(String)",
        "source_key": "String",
        "event_time": "DateTime64(3, 'UTC')",
        "ingested_at": "DateTime64(3, 'UTC')",
        "resident_key": "Nullable(String)",
        "grid_code": "Nullable(String)",
        "payload": "String",
        "link_rule": "LowCardinality(String)",
    },
    "unlinked": {
        "source": "LowCardinality(String)",
        "entity": "LowCardinality(String)",
        "source_key": "String",
        "event_time": "DateTime64(3, 'UTC')",
        "why": "String",
        "grid_code": "Nullable(String)",
        "community_code": "Nullable(String)",
        "payload": "String",
        "updated_at": "DateTime64(3, 'UTC')",
        "is_deleted": "UInt8",
    },
}
"""ClickHouse types of the columns a merge process writes as Native blocks (its process
has no connection to the store to ask); a test holds them to the migrated tables."""


FAILPOINT_STORE_DOWN_SECONDS = "GRIDHUB_FAILPOINT_STORE_DOWN_SECONDS"
"""Fault injection for tests (unset in any deployment): the store refuses every insert for
this many seconds from the first one, as a ClickHouse server that went away would."""
_store_down_until: float | None = None


def _failpoint_store_down() -> None:
    global _store_down_until
    seconds = os.environ.get(FAILPOINT_STORE_DOWN_SECONDS)
    if not seconds:
        return
    if _store_down_until is None:
        _store_down_until = time.monotonic() + float(seconds)
    if time.monotonic() < _store_down_until:
        raise ConnectionRefusedError("failpoint: the store is down")


PartDone = Callable[[str, str, int, int, int], None]
"""Called with (source, entity, seq, part, parts) once a part is in the store."""


def _dead_letter_row(row: dict[str, Any]) -> dict[str, Any]:
    raw: bytes = row["raw"]
    return {
        **row,
        "source_key": row.get("source_key") or "",
        "raw_hash": hashlib.sha256(raw).hexdigest(),
    }


@dataclass
class BatchingSink:
    """Collects rows per table and inserts them in as few inserts as possible."""

    client: Client
    database: str
    on_part_done: PartDone | None = None
    metrics: SinkMetrics | None = None
    rows: dict[str, list[list[Any]]] = field(default_factory=dict)
    blocks: list[tuple[str, tuple[str, ...], bytes, int]] = field(default_factory=list)
    """(table, columns, Native block, rows) from a merge process."""
    event_time_ms: list[int] = field(default_factory=list)
    """Source times of the new source records among the rows pending, epoch ms (for
    freshness; see ``streams.topology.MergedBatch``)."""
    parts: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    inserted: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    freshness: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    """Seconds from each stored event's source time to the moment it became queryable."""

    def add(self, envelope: dict[str, Any]) -> int:
        """Decode one envelope's rows into the pending batch; returns the rows added."""
        for record in envelope["records"]:
            name, row = decode(record)
            if name == "DeadLetter":
                row = _dead_letter_row(row)
            table, columns = TABLES[name]
            self.rows.setdefault(table, []).append([row.get(column) for column in columns])
        self.add_part(
            envelope["source"],
            envelope["entity"],
            envelope["seq"],
            envelope["part"],
            envelope["partition_count"],
        )
        return len(envelope["records"])

    def add_rows(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        """Add rows built in this process (schema name, row dict)."""
        for name, row in rows:
            if name == "DeadLetter":
                row = _dead_letter_row(row)
            table, columns = TABLES[name]
            self.rows.setdefault(table, []).append([row.get(column) for column in columns])

    def add_block(self, table: str, columns: tuple[str, ...], block: bytes, rows: int) -> None:
        """Add one table's rows as a Native block, inserted as it is."""
        self.blocks.append((table, columns, block, rows))

    def add_part(self, source: str, entity: str, seq: int, part: int, parts: int) -> None:
        """Report this envelope part as done once the pending rows are stored."""
        self.parts.append((source, entity, seq, part, parts))

    @property
    def pending_rows(self) -> int:
        """Rows waiting for :meth:`flush`."""
        return sum(len(rows) for rows in self.rows.values()) + sum(
            block[3] for block in self.blocks
        )

    def flush(self) -> int:
        """Insert every pending row (one insert per table, and one per block); then
        report the parts done.

        Raises:
            SinkBackpressure: ClickHouse refused or did not answer; nothing was acknowledged.
        """
        columns_of = {table: columns for table, columns in TABLES.values()}
        total = 0
        with self.lock:
            for table, rows in self.rows.items():
                self._insert(table, columns_of[table], len(rows), rows=rows)
                total += len(rows)
            for table, columns, block, count in self.blocks:
                self._insert(table, columns, count, block=block)
                total += count
            fresh = self._measure_freshness()
            if self.metrics is not None:
                self.metrics.flushed(total, fresh)
            self.rows.clear()
            self.blocks.clear()
            parts, self.parts = self.parts, []
        if self.on_part_done is not None:
            for part in parts:
                self.on_part_done(*part)
        return total

    def _insert(
        self,
        table: str,
        columns: tuple[str, ...],
        count: int,
        *,
        rows: list[list[Any]] | None = None,
        block: bytes | None = None,
    ) -> None:
        """One insert of Python rows (clickhouse-connect sends them in the Native format),
        or of a Native block as it came. What was
        inserted before a failure further on is inserted again on the retry; the tables
        absorb that (ReplacingMergeTree)."""
        target = f"{self.database}.{table}"
        started = time.monotonic()
        try:
            _failpoint_store_down()
            if block is not None:
                self.client.raw_insert(target, list(columns), insert_block=block, fmt="Native")
            else:
                self.client.insert(target, rows, column_names=list(columns))
        except Exception as exc:
            raise SinkBackpressure(
                f"ClickHouse did not take {count} rows for {table}: "
                f"{type(exc).__name__}: {str(exc)[:300]}"
            ) from exc
        self.inserted[table] = self.inserted.get(table, 0) + count
        if self.metrics is not None:
            self.metrics.inserted(table, count, time.monotonic() - started)

    def _measure_freshness(self) -> list[float]:
        """Seconds from each pending event's source time to now, when it is stored."""
        stored_ms = datetime.now(UTC).timestamp() * 1000
        fresh = [(stored_ms - t) / 1000 for t in self.event_time_ms]
        self.freshness.extend(fresh)
        self.event_time_ms.clear()
        return fresh
