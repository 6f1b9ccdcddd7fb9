"""The civil-affairs connector reads every ``jzdx`` row version exactly once in effect.

A real ``CivilSource`` against the PostgreSQL simulator (``updated_at`` stamped
by a trigger with the writing transaction's start) and the embedded broker;
what reached the raw topic is read back with an independent Kafka client.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from gridhub.connectors.base.checkpoint import Checkpoint, FileCheckpointStore
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.civil_affairs.source import CivilSource
from gridhub.schemas.serde import decode
from gridhub.simulators.civil_db import CivilDatabase
from hypothesis import given
from psycopg.rows import dict_row
from pydantic import SecretStr

from gridhub.config import CivilSourceConfig
from gridhub.errors import SourceUnavailable
from gridhub.runtime.broker import EmbeddedBroker
from tests.cases.police_rows import JZDX_ROW
from tests.connectors.conftest import RawTopics, plans, property_settings

BATCH_ROWS = 7


@pytest.fixture
def civil_db() -> Iterator[CivilDatabase]:
    with CivilDatabase() as db:
        yield db


@pytest.fixture
def civil_raw(broker: EmbeddedBroker) -> RawTopics:
    return RawTopics(broker.bootstrap, source="civil")


def jzdx(n: int, **changes: Any) -> dict[str, Any]:
    """A ``jzdx`` row (without ``id`` and ``updated_at``, which the database sets) of person n."""
    row = {k: v for k, v in JZDX_ROW.items() if k not in ("id", "updated_at")}
    row.update(sfzh=f"32072319{50 + n % 40:02d}0101{n % 1000:03d}X", xm=f"居民{n}")
    row.update(jtzz=f"灌云县伊山镇幸福路{n}号", **changes)
    return row


class Connector:
    """CivilSource instances sharing one checkpoint directory (restart = a new one)."""

    def __init__(self, db: CivilDatabase, raw: RawTopics, directory: Path) -> None:
        self.config = CivilSourceConfig(
            dsn=SecretStr(db.dsn), batch_rows=BATCH_ROWS, lookback_seconds=30, poll_seconds=0.02
        )
        self.publisher = EnvelopePublisher(raw.bootstrap, raw.topics)
        self.store = FileCheckpointStore(directory)
        self.source = self._build()

    def _build(self) -> CivilSource:
        checkpoints = {"jzdx": Checkpoint(self.store, "civil", "jzdx")}
        return CivilSource(self.config, self.publisher, checkpoints, ack_on_publish=True)

    def restart(self) -> CivilSource:
        self.source.client.close()
        self.source = self._build()
        return self.source


@pytest.fixture
def connector(civil_db: CivilDatabase, civil_raw: RawTopics, tmp_path: Path) -> Iterator[Connector]:
    made = Connector(civil_db, civil_raw, tmp_path / "checkpoints")
    yield made
    made.source.client.close()
    made.publisher.close()


def published(raw: RawTopics) -> list[tuple[int, bool, str]]:
    """(id, deleted, updated_at) of every published record, in publishing order."""
    out = []
    for record in raw.records("jzdx"):
        assert record[:1] == b"\x00", "a jzdx row fell back to JSON"
        name, row = decode(record)
        assert name == "JzdxRow"
        out.append((row["id"], row["deleted"], row["updated_at"].isoformat()))
    return out


def in_table(db: CivilDatabase) -> set[tuple[int, bool, str]]:
    with db.connect() as conn:
        rows = conn.execute("SELECT id, deleted, updated_at FROM public.jzdx").fetchall()
    return {(i, d, u.isoformat()) for i, d, u in rows}


def test_rows_sharing_one_stamp_across_pages_are_each_published_once(
    civil_db: CivilDatabase, civil_raw: RawTopics, connector: Connector
) -> None:
    civil_db.load([jzdx(n) for n in range(20)])  # one transaction: one updated_at for all
    assert len({u for _, _, u in in_table(civil_db)}) == 1
    assert connector.source.poll() == 20  # pages of 7 rows, keyset (updated_at, id)
    assert connector.source.poll() == 0  # read again through the lookback, not republished
    assert sorted(published(civil_raw)) == sorted(in_table(civil_db))


def test_a_late_transaction_and_a_soft_delete_are_published(
    civil_db: CivilDatabase, civil_raw: RawTopics, connector: Connector
) -> None:
    (first,) = civil_db.upsert([jzdx(1)])
    late = civil_db.late_transaction()  # its rows are stamped now, visible at commit
    late.upsert([jzdx(2)])
    civil_db.upsert([jzdx(3)])
    assert connector.source.poll() == 2  # the late row is not visible yet
    late.commit()
    civil_db.soft_delete([first])
    assert connector.source.poll() == 2  # the late row (older stamp) and the delete
    versions = published(civil_raw)
    assert len(versions) == 4
    assert {v for v in versions if v[0] == first and v[1]}  # the deleted version
    assert set(versions) >= in_table(civil_db)


def test_a_dropped_connection_is_retried_from_the_checkpoint_and_loses_nothing(
    civil_db: CivilDatabase, civil_raw: RawTopics, connector: Connector
) -> None:
    civil_db.load([jzdx(n) for n in range(10)])
    assert connector.source.poll() == 10
    civil_db.kill_connections()  # the database restarts under the connector
    civil_db.load([jzdx(n) for n in range(10, 15)])
    with pytest.raises(SourceUnavailable, match="civil") as failure:
        connector.source.poll()
    assert civil_db.dsn not in str(failure.value)
    connector.source.rewind()  # what the source loop does after a failure
    assert connector.source.poll() == 5
    restarted = connector.restart()  # a new process resumes from the committed checkpoint
    assert restarted.poll() == 0
    assert sorted(published(civil_raw)) == sorted(in_table(civil_db))


# --- property: random interleavings of writes, late transactions, faults, restarts -------

ROWS = 6
CIVIL_PLANS = plans(
    ["insert", "update", "delete", "late", "commit", "poll", "restart", "drop"], ROWS, 14
)


def versions(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(r["id"], r["updated_at"].isoformat(), str(r["bzje"]), r["deleted"]) for r in rows}


@property_settings
@given(plan=CIVIL_PLANS)
def test_random_interleavings_publish_every_latest_version_exactly_once(
    civil_db: CivilDatabase, broker: EmbeddedBroker, tmp_path: Path, plan: list[tuple[str, int]]
) -> None:
    raw = RawTopics(broker.bootstrap, source="civil")
    connector = Connector(civil_db, raw, tmp_path / secrets.token_hex(4))
    with civil_db.connect() as conn:
        conn.execute("TRUNCATE public.jzdx")
    ids: dict[int, int] = {}
    late: list[Any] = []
    amount = 100
    try:
        for action, n in plan:
            amount += 1
            if action == "insert" or (action in ("update", "delete") and n not in ids):
                (ids[n],) = civil_db.upsert([jzdx(n, bzje=Decimal(amount))])
            elif action == "update":
                civil_db.upsert([{"id": ids[n], "bzje": Decimal(amount)}])
            elif action == "delete":
                civil_db.soft_delete([ids[n]])
            elif action == "late":
                writer = civil_db.late_transaction()  # stamped now, visible at its commit
                writer.upsert([jzdx(100 + n, bzje=Decimal(amount))])
                late.append(writer)
            elif action == "commit" and late:
                late.pop(0).commit()
            elif action == "poll":
                connector.source.poll()
            elif action == "restart":
                connector.restart()
            elif action == "drop":  # the database restarts: open transactions are lost
                civil_db.kill_connections()
                for writer in late:
                    with contextlib.suppress(Exception):
                        writer.rollback()
                late.clear()
                with contextlib.suppress(SourceUnavailable):
                    connector.source.poll()
                connector.source.rewind()
        for writer in late:
            writer.commit()
        connector.source.poll()
        assert connector.source.poll() == 0
        with civil_db.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            latest = versions(cur.execute("SELECT * FROM public.jzdx").fetchall())
    finally:
        connector.source.client.close()
        connector.publisher.close()
    records = raw.records("jzdx")
    published = [tuple(v) for v in versions([decode(r)[1] for r in records])]
    assert latest <= set(published)  # every row's latest version
    assert len(published) == len(set(published))  # and none twice
