"""Polls the public-security tables ``syrk`` and ``jq`` (see ``checkpoint.py``).

Each poll pages through ``gxsj >= low`` in ``(gxsj, key)`` order with a keyset
(never OFFSET, which shifts under concurrent writes), validates each row with
its pydantic model (a row that fails goes to dead letters later, in the
normaliser, with the reason: the connector publishes it as raw JSON so
nothing is lost), and publishes batches.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

from gridhub.connectors.base.checkpoint import Checkpoint
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.source import Source
from gridhub.connectors.public_security.checkpoint import TableWindow, row_digest
from gridhub.connectors.public_security.client import PoliceClient
from gridhub.schemas import encode_dict

from gridhub.config import PoliceSourceConfig

TABLES: dict[str, tuple[str, str]] = {
    # entity: (table, key column)
    "syrk": ("syrk", "rkbh"),
    "jq": ("jq", "jqbh"),
}
SCHEMA = {"syrk": "SyrkRow", "jq": "JqRow"}


def encode_row(entity: str, row: dict[str, Any]) -> bytes:
    """The row in its Avro schema; a row that does not fit it travels as raw JSON."""
    try:
        return encode_dict(SCHEMA[entity], row)
    except Exception:
        return json.dumps(row, ensure_ascii=False, default=str).encode("utf-8")


class PoliceSource(Source):
    """The 公安人口信息系统 connector."""

    name = "police"

    def __init__(
        self,
        config: PoliceSourceConfig,
        publisher: EnvelopePublisher,
        checkpoints: dict[str, Checkpoint],
        *,
        ack_on_publish: bool,
        entities: tuple[str, ...] = ("syrk", "jq"),
    ) -> None:
        self.entities = entities
        super().__init__(
            publisher, checkpoints, ack_on_publish=ack_on_publish, poll_seconds=config.poll_seconds
        )
        self.config = config
        self.client = PoliceClient(config.dsn.get_secret_value())
        self.windows: dict[str, TableWindow] = {}
        self.rewind()

    def rewind(self) -> None:
        """Resume every table from its committed position."""
        self.client.close()
        for entity in self.entities:
            committed = self.checkpoints[entity].rewind()
            self.windows[entity] = TableWindow(
                copy.deepcopy(committed), self.config.lookback_seconds
            )

    def poll(self) -> int:
        """One pass over both tables.

        A failure part-way (a page query, a publish) rewinds to the committed
        position: rows taken into the in-memory window but not yet published
        must not count as published on the next pass.
        """
        try:
            return sum(self.poll_table(entity) for entity in self.entities)
        except Exception:
            self.rewind()
            raise

    def poll_table(self, entity: str) -> int:
        """Page through ``gxsj >= low`` and publish every new row version."""
        table, key = TABLES[entity]
        window = self.windows[entity]
        size = self.config.batch_rows
        low = window.low or datetime(1900, 1, 1)
        last: tuple[datetime, str] | None = None
        newest: datetime | None = None
        batch: list[bytes] = []
        published = 0
        while True:
            if last is None:
                sql = f"SELECT * FROM {table} WHERE gxsj >= %s ORDER BY gxsj, {key} LIMIT %s"
                rows = self.client.query(sql, (low, size))
            else:
                sql = (
                    f"SELECT * FROM {table} WHERE gxsj > %s OR (gxsj = %s AND {key} > %s) "
                    f"ORDER BY gxsj, {key} LIMIT %s"
                )
                rows = self.client.query(sql, (last[0], last[0], last[1], size))
            for row in rows:
                if window.accept(str(row[key]), row["gxsj"], row_digest(row)):
                    batch.append(encode_row(entity, row))
            if rows:
                last = (rows[-1]["gxsj"], str(rows[-1][key]))
                newest = last[0]
                window.advance(newest)
            if len(batch) >= size:
                self.emit(entity, batch, window.position())
                published += len(batch)
                batch = []
            if len(rows) < size:
                break
        window.advance(newest)
        if batch:
            self.emit(entity, batch, window.position())
            published += len(batch)
        self.health.positions[entity] = {
            "low": window.position()["low"],
            "window": len(window.seen),
        }
        return published
