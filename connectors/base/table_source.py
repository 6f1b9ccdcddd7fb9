"""A source made of database tables that carry only an update stamp (police, civil affairs).

Each poll pages through ``stamp >= low`` in ``(stamp, key)`` order with a
keyset (never OFFSET, which shifts under concurrent writes) and publishes the
row versions its :class:`~gridhub.connectors.base.table_window.TableWindow`
has not published yet. A row is encoded with its Avro schema; one that does
not fit it travels as JSON text, so the route stage dead-letters it with the
reason and nothing is lost here. A failure part-way (a page query, a
publish) rewinds every table to its committed position: rows taken into the
in-memory window but not published must not count as published.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gridhub.connectors.base.checkpoint import Checkpoint
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.records import encode_row
from gridhub.connectors.base.source import Source
from gridhub.connectors.base.table_window import TIME_FORMAT, TableWindow, row_digest

from gridhub.config import PolledTablesConfig


@dataclass(frozen=True)
class TableSpec:
    """One polled table."""

    entity: str
    table: str
    """As written in SQL (``syrk``, ``public.jzdx``)."""
    key: str
    stamp: str
    schema: str
    """The Avro schema of its rows (``SyrkRow``, ``JzdxRow``)."""


class TableClient(Protocol):
    """What a table source needs of its database client."""

    def query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Rows of one statement, each seeing the latest committed data."""
        ...

    def close(self) -> None:
        """Drop the connection; the next query reconnects."""
        ...


class TableSource(Source):
    """Polls every table of ``specs`` through ``client`` (see the module docstring)."""

    stamp_format: str | None = TIME_FORMAT
    """How stamps are kept in the position (``None``: ISO 8601 with microseconds)."""

    tables: tuple[TableSpec, ...]
    """Every table the source knows (``entities`` picks among them)."""

    def __init__(
        self,
        config: PolledTablesConfig,
        publisher: EnvelopePublisher,
        checkpoints: dict[str, Checkpoint],
        *,
        ack_on_publish: bool,
        entities: tuple[str, ...] | None = None,
    ) -> None:
        self.specs = tuple(s for s in self.tables if entities is None or s.entity in entities)
        self.entities = tuple(spec.entity for spec in self.specs)
        super().__init__(
            publisher, checkpoints, ack_on_publish=ack_on_publish, poll_seconds=config.poll_seconds
        )
        self.config = config
        self.client = self.make_client(config)
        self.lookback_seconds = config.lookback_seconds
        self.batch_rows = config.batch_rows
        self.windows: dict[str, TableWindow] = {}
        self.rewind()

    @abstractmethod
    def make_client(self, config: PolledTablesConfig) -> TableClient:
        """The database client, from the source's configuration."""

    @property
    @abstractmethod
    def floor(self) -> datetime:
        """A stamp older than any row (where a fresh window starts)."""

    def close(self) -> None:
        """Drop the database connection."""
        self.client.close()

    def rewind(self) -> None:
        """Resume every table from its committed position."""
        self.client.close()
        self.windows = self.committed_windows(self.lookback_seconds, self.stamp_format)

    def poll(self) -> int:
        """One pass over every table; a failure part-way rewinds them all."""
        try:
            return sum(self.poll_table(spec) for spec in self.specs)
        except Exception:
            self.rewind()
            raise

    def poll_table(self, spec: TableSpec) -> int:
        """Page through ``stamp >= low`` and publish every new row version."""
        window = self.windows[spec.entity]
        size = self.batch_rows
        low = window.low or self.floor
        last: tuple[datetime, Any] | None = None
        newest: datetime | None = None
        batch: list[bytes] = []
        published = 0
        stamp, key = spec.stamp, spec.key
        while True:
            if last is None:
                sql = (
                    f"SELECT * FROM {spec.table} WHERE {stamp} >= %s "
                    f"ORDER BY {stamp}, {key} LIMIT %s"
                )
                rows = self.client.query(sql, (low, size))
            else:
                sql = (
                    f"SELECT * FROM {spec.table} "
                    f"WHERE {stamp} > %s OR ({stamp} = %s AND {key} > %s) "
                    f"ORDER BY {stamp}, {key} LIMIT %s"
                )
                rows = self.client.query(sql, (last[0], last[0], last[1], size))
            for row in rows:
                if window.accept(str(row[key]), row[stamp], row_digest(row)):
                    batch.append(encode_row(spec.schema, row))
            if rows:
                last = (rows[-1][stamp], rows[-1][key])
                newest = last[0]
                window.advance(newest)
            if len(batch) >= size:
                self.emit(spec.entity, batch, window.position())
                published += len(batch)
                batch = []
            if len(rows) < size:
                break
        window.advance(newest)
        if batch:
            self.emit(spec.entity, batch, window.position())
            published += len(batch)
        self.health.positions[spec.entity] = {
            "low": window.position()["low"],
            "window": len(window.seen),
        }
        return published
