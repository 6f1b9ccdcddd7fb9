"""Fixtures for the connector tests: the real embedded broker, a throw-away police
database, and a reader that returns everything a connector published on a raw topic.

Nothing here is mocked: batches go through Tansu (the broker the hub embeds) and
come back through an independent client (aiokafka), so a test sees exactly what
the stream stages would see.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql.cursors
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from gridhub.schemas.serde import decode
from gridhub.simulators.police_db import JQ_COLUMNS, SYRK_COLUMNS, PoliceDatabase
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from kafka.admin import KafkaAdminClient, NewTopic

from gridhub.errors import SourceUnavailable
from gridhub.runtime.broker import EmbeddedBroker
from gridhub.topics import SOURCE_ENTITIES, Topics

COLUMNS = {"syrk": SYRK_COLUMNS, "jq": JQ_COLUMNS}

Version = tuple[Any, ...]
"""One row version: every column in table order (key, content and ``gxsj``)."""


def version(entity: str, row: dict[str, Any]) -> Version:
    """The comparable form of a row, whether read from MariaDB or decoded from Avro."""
    return tuple(row[column] for column in COLUMNS[entity])


@dataclass(frozen=True)
class Batch:
    """One envelope read back from a raw topic."""

    offset: int
    source: str
    entity: str
    seq: int
    cursor: dict[str, Any]
    records: list[bytes]

    def rows(self) -> list[dict[str, Any]]:
        """The records decoded with their own schema (``SyrkRow``, ``JqRow``)."""
        return [decode(record)[1] for record in self.records]

    def versions(self) -> list[Version]:
        """The records as comparable row versions."""
        return [version(self.entity, row) for row in self.rows()]


class RawTopics:
    """The police raw topics of one private prefix, and what was published on them."""

    def __init__(self, bootstrap: str, source: str = "police") -> None:
        self.bootstrap = bootstrap
        self.source = source
        self.topics = Topics(prefix=f"t{secrets.token_hex(6)}")
        self._create()

    def _create(self) -> None:
        """One partition per raw topic, as the hub creates them (source order)."""
        admin = KafkaAdminClient(bootstrap_servers=[self.bootstrap], client_id="tests-admin")
        try:
            admin.create_topics(
                [
                    NewTopic(self.topics.raw(self.source, entity), 1, 1)
                    for entity in SOURCE_ENTITIES[self.source]
                ]
            )
        finally:
            admin.close()

    def batches(self, entity: str) -> list[Batch]:
        """Every envelope on the entity's raw topic, in offset order."""
        messages = asyncio.run(_read_topic(self.bootstrap, self.topics.raw(self.source, entity)))
        batches = []
        for offset, value in messages:
            name, envelope = decode(value)
            assert name == "Envelope"
            batches.append(
                Batch(
                    offset=offset,
                    source=envelope["source"],
                    entity=envelope["entity"],
                    seq=envelope["seq"],
                    cursor=json.loads(envelope["cursor"]),
                    records=list(envelope["records"]),
                )
            )
        return batches

    def records(self, entity: str) -> list[bytes]:
        """Every record published for the entity, in publishing order."""
        return [record for batch in self.batches(entity) for record in batch.records]

    def versions(self, entity: str) -> list[Version]:
        """Every published record as a row version, in publishing order."""
        return [v for batch in self.batches(entity) for v in batch.versions()]


async def _read_topic(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    """Offsets and values of every message, read up to the high watermark of each
    partition with manual assignment (no consumer group, nothing committed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        messages: list[tuple[int, bytes]] = []
        for partition in partitions:
            while await consumer.position(partition) < ends[partition]:
                fetched = await consumer.getmany(partition, timeout_ms=2000)
                messages += [
                    (m.offset, m.value) for m in fetched.get(partition, []) if m.value is not None
                ]
        return messages
    finally:
        await consumer.stop()


class TableReader:
    """Reads committed rows over one session of its own that reconnects after the
    database dropped it (each new PyMySQL connection builds a TLS context, ~50 ms)."""

    def __init__(self, db: PoliceDatabase) -> None:
        self._conn = db.connect()

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of a table, committed data only."""
        self._conn.ping(reconnect=True)
        with self._conn.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(f"SELECT * FROM {table}")
            return list(cursor.fetchall())

    def versions(self, entity: str) -> set[Version]:
        """The latest version of every row of the entity's table."""
        return {version(entity, row) for row in self.rows(entity)}

    def execute(self, sql: str) -> None:
        """One statement of the test's own, such as emptying a table between examples."""
        self._conn.ping(reconnect=True)
        with self._conn.cursor() as cursor:
            cursor.execute(sql)

    def close(self) -> None:
        self._conn.close()


def table_versions(db: PoliceDatabase, entity: str) -> set[Version]:
    """The latest version of every row of the entity's table, read once."""
    reader = TableReader(db)
    try:
        return reader.versions(entity)
    finally:
        reader.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The embedded Tansu broker, started once per test module."""
    log_dir: Path = tmp_path_factory.mktemp("broker")
    with EmbeddedBroker(log_dir / "broker.log") as running:
        yield running


@pytest.fixture
def raw(broker: EmbeddedBroker) -> RawTopics:
    """Raw topics under a prefix no other test uses."""
    return RawTopics(broker.bootstrap)


@pytest.fixture
def police_db() -> Iterator[PoliceDatabase]:
    """A fresh ``ga_rkxx_<hex>`` database, dropped after the test."""
    with PoliceDatabase() as database:
        yield database


def plans(actions: list[str], keys: int, max_size: int = 12) -> st.SearchStrategy[Any]:
    """Random plans for the property tests: steps of (action, which record)."""
    return st.lists(
        st.tuples(st.sampled_from(actions), st.integers(0, keys - 1)),
        min_size=3,
        max_size=max_size,
    )


property_settings = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
"""Each example runs real databases, servers and the broker: few examples, no deadline."""


def poll_as_the_loop_does(source: Any) -> None:
    """One poll as a source's loop makes it: a failure rewinds to the checkpoint."""
    try:
        source.poll()
    except SourceUnavailable:
        source.rewind()
