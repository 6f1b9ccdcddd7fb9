"""The police connector reads every row version exactly once in effect.

Each test drives a real ``PoliceSource`` against the MariaDB simulator and the
embedded Tansu broker, makes one hazard of spec/sources/public-security.md
happen for real (rows sharing a second across a batch boundary, updates inside
one second, late commits, dropped connections, crashes between the broker's
acknowledgement and the checkpoint's), and reads back what reached the raw
topic with an independent Kafka client.

"Exactly once in effect" means: every version visible long enough is
published; nothing is published twice, except after a crash, where the batch
in flight is published again byte for byte (the store keeps one copy).
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql
import pytest
from gridhub.connectors.base.checkpoint import Checkpoint, FileCheckpointStore
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.table_window import TIME_FORMAT, row_digest
from gridhub.connectors.public_security.client import PoliceClient
from gridhub.connectors.public_security.source import PoliceSource
from gridhub.schemas.serde import decode
from gridhub.simulators.county import County, generate_county
from gridhub.simulators.police_db import LateTransaction, PoliceDatabase
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from gridhub.config import PoliceSourceConfig
from gridhub.errors import SourceUnavailable
from gridhub.runtime.broker import EmbeddedBroker
from gridhub.topics import Topics
from tests.connectors.conftest import RawTopics, TableReader, Version, table_versions, version

LOOKBACK = 30.0
BATCH_ROWS = 7
T0 = datetime(2025, 6, 1, 9, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


class SimulatedCrash(BaseException):
    """The connector process dying (``kill -9``) between two steps of a batch.

    A BaseException, so that no handler of the connector runs, as after ``kill -9``.
    """


class HookedPublisher(EnvelopePublisher):
    """The real publisher with a hook run after Kafka accepted each batch.

    The hook puts a fault at an exact point of a poll: the database dropping
    its connections between two pages, or a crash after the broker's
    acknowledgement but before the checkpoint's (the case that republishes).
    """

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        super().__init__(bootstrap, topics)
        self.hook: Callable[[list[bytes]], None] | None = None

    def publish(
        self, source: str, entity: str, seq: int, records: list[bytes], cursor: dict[str, Any]
    ) -> None:
        super().publish(source, entity, seq, records, cursor)
        if self.hook is not None:
            self.hook(records)


class Connector:
    """PoliceSource instances sharing one checkpoint directory and one publisher.

    :meth:`restart` builds a new instance from the last committed checkpoint,
    as the hub does after ``kill -9``; the previous instance is abandoned.
    """

    def __init__(
        self,
        db: PoliceDatabase,
        raw: RawTopics,
        directory: Path,
        *,
        ack_on_publish: bool = True,
        lookback: float = LOOKBACK,
        entities: tuple[str, ...] = ("syrk",),
    ) -> None:
        self.config = PoliceSourceConfig(
            dsn=SecretStr(db.dsn),
            batch_rows=BATCH_ROWS,
            lookback_seconds=lookback,
            poll_seconds=0.02,
        )
        self.ack_on_publish = ack_on_publish
        self.entities = entities
        self.publisher = HookedPublisher(raw.bootstrap, raw.topics)
        self.store = FileCheckpointStore(directory)
        self.source = self._build()

    def _build(self) -> PoliceSource:
        checkpoints = {e: Checkpoint(self.store, "police", e) for e in self.entities}
        return PoliceSource(
            self.config,
            self.publisher,
            checkpoints,
            ack_on_publish=self.ack_on_publish,
            entities=self.entities,
        )

    def restart(self) -> PoliceSource:
        self.source.client.close()
        self.source = self._build()
        return self.source

    def drain(self) -> int:
        """Poll until a poll publishes nothing; the number of records published."""
        total = 0
        for _ in range(20):
            published = self.source.poll()
            if published == 0:
                return total
            total += published
        raise AssertionError("the connector kept publishing")

    def committed(self, entity: str = "syrk") -> dict[str, Any] | None:
        return self.store.load("police", entity)

    def close(self) -> None:
        self.source.client.close()
        self.publisher.close()


@pytest.fixture
def connect(
    police_db: PoliceDatabase, raw: RawTopics, tmp_path: Path
) -> Iterator[Callable[..., Connector]]:
    made: list[Connector] = []

    def make(**options: Any) -> Connector:
        connector = Connector(police_db, raw, tmp_path / f"checkpoints{len(made)}", **options)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


@pytest.fixture(scope="module")
def county() -> County:
    return generate_county(400, seed=21, today=date(2025, 6, 1))


def person(county: County, n: int, gxsj: datetime, **fields: Any) -> dict[str, Any]:
    """A realistic syrk row under a synthetic key ``P<n>``, stamped ``gxsj``."""
    row = dict(county.syrk_rows[n % len(county.syrk_rows)], rkbh=f"P{n:05d}", gxsj=gxsj)
    row.update(fields)
    return row


def syrk(row: dict[str, Any]) -> Version:
    return version("syrk", row)


def assert_each_once(versions: list[Version]) -> None:
    repeated = [v for v, count in Counter(versions).items() if count > 1]
    assert repeated == []


# --- 1. initial load ------------------------------------------------------------------


def test_initial_load_publishes_every_row_once_in_numbered_batches(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows, county.jq_rows)
    connector = connect(entities=("syrk", "jq"))
    rows, incidents = len(county.syrk_rows), len(county.jq_rows)

    assert connector.source.poll() == rows + incidents

    batches = raw.batches("syrk")
    assert [b.seq for b in batches] == list(range(len(batches)))
    assert [len(b.records) for b in batches] == [BATCH_ROWS] * (len(batches) - 1) + [
        rows - BATCH_ROWS * (len(batches) - 1)
    ]
    published = raw.versions("syrk")
    assert_each_once(published)
    assert set(published) == table_versions(police_db, "syrk")
    assert [(v[-1], v[0]) for v in published] == sorted((v[-1], v[0]) for v in published)
    # the hazard happened: one second's rows were split between consecutive batches
    split = [
        a for a, b in itertools.pairwise(batches) if a.rows()[-1]["gxsj"] == b.rows()[0]["gxsj"]
    ]
    assert len(split) >= 3

    newest = max(r["gxsj"] for r in county.syrk_rows)
    low = stamp(newest - timedelta(seconds=LOOKBACK))
    assert batches[-1].cursor == {"low": low}
    lows = [b.cursor["low"] for b in batches]
    assert lows == sorted(lows)
    committed = connector.committed()
    assert committed is not None
    assert committed["low"] == low
    assert set(committed["seen"]) == {
        r["rkbh"] for r in county.syrk_rows if stamp(r["gxsj"]) >= low
    }

    jq = raw.batches("jq")
    assert [b.seq for b in jq] == list(range(len(jq)))
    assert_each_once(raw.versions("jq"))
    assert set(raw.versions("jq")) == table_versions(police_db, "jq")

    assert connector.source.poll() == 0
    assert len(raw.batches("syrk")) == len(batches)
    assert len(raw.batches("jq")) == len(jq)


# --- 2. updates -----------------------------------------------------------------------


def test_updates_publish_each_new_version_and_nothing_else(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows)
    connector = connect()
    assert connector.source.poll() == len(county.syrk_rows)
    t = max(r["gxsj"] for r in county.syrk_rows) + timedelta(seconds=5)
    rows = county.syrk_rows[:10]

    moved = [dict(r, jzdz=r["jzdz"] + "东101室", gxsj=t) for r in rows[:9]]
    deregistered = dict(rows[9], zxbz="1", gxsj=t)
    police_db.upsert_syrk([*moved, deregistered])
    assert connector.source.poll() == 10
    assert set(raw.versions("syrk")[len(county.syrk_rows) :]) == {
        syrk(r) for r in [*moved, deregistered]
    }

    corrected = dict(moved[0], jzdz=moved[0]["jzdz"] + "(更正)")  # same row, same second
    police_db.upsert_syrk([corrected, moved[1]])  # moved[1] is rewritten unchanged
    assert connector.source.poll() == 1

    published = raw.versions("syrk")
    assert published[-1] == syrk(corrected)
    assert syrk(moved[0]) in published  # both versions of the second are there
    assert len(published) == len(county.syrk_rows) + 11
    assert_each_once(published)
    assert table_versions(police_db, "syrk") <= set(published)
    assert connector.source.poll() == 0


def test_an_update_from_null_to_empty_inside_one_second_is_published(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.upsert_syrk([person(county, 1, at(0), lxdh=None)])
    connector = connect()
    assert connector.source.poll() == 1
    police_db.upsert_syrk([person(county, 1, at(0), lxdh="")])
    assert connector.source.poll() == 1
    assert raw.batches("syrk")[-1].rows() == [person(county, 1, at(0), lxdh="")]


# --- 3. late commits ------------------------------------------------------------------


def late_commit(
    db: PoliceDatabase, connector: Connector, county: County
) -> tuple[set[Version], int, int]:
    """Rows stamped T become visible after rows stamped T + 5 s were read.

    Returns the late versions, what the poll before the commit published and
    what the poll after it published.
    """
    early = [person(county, n, at(n)) for n in range(10)]
    db.upsert_syrk(early)
    assert connector.source.poll() == 10
    t = at(20)
    with db.late_transaction() as late:
        inserted = person(county, 100, t)
        updated = dict(early[3], jzdz=early[3]["jzdz"] + "西201室", gxsj=t)
        late.upsert_syrk([inserted, updated])
        db.upsert_syrk([person(county, 200 + n, t + timedelta(seconds=5)) for n in range(9)])
        before = connector.source.poll()
        late.commit()
    return {syrk(inserted), syrk(updated)}, before, connector.source.poll()


def test_a_late_commit_is_published_once_visible(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    connector = connect()
    late, before, after = late_commit(police_db, connector, county)
    assert (before, after) == (9, 2)
    published = raw.versions("syrk")
    assert set(published[-2:]) == late
    assert not late & set(published[:-2])  # invisible while the writer held it
    committed = connector.committed()
    assert committed is not None
    assert committed["low"] == stamp(at(25 - LOOKBACK))
    assert connector.source.poll() == 0
    assert_each_once(raw.versions("syrk"))
    assert table_versions(police_db, "syrk") <= set(raw.versions("syrk"))


def test_without_lookback_the_same_late_commit_is_lost(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    """The scenario above really exercises the hazard: a window that does not look
    back is already past the late rows' second when they become visible."""
    connector = connect(lookback=0)
    late, before, after = late_commit(police_db, connector, county)
    assert (before, after) == (9, 0)
    assert not late & set(raw.versions("syrk"))


# --- 4. dropped connections -----------------------------------------------------------


def test_a_connection_dropped_between_polls_fails_one_poll_only(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows)
    connector = connect()
    assert connector.source.poll() == len(county.syrk_rows)
    assert police_db.kill_connections() == 1  # the connector's own session
    changed = [dict(r, zxbz="1", gxsj=at(0)) for r in county.syrk_rows[:5]]
    police_db.upsert_syrk(changed)

    with pytest.raises(SourceUnavailable, match="source police: database error"):
        connector.source.poll()
    assert connector.source.poll() == 5  # reconnected; nothing was read before the failure

    published = raw.versions("syrk")
    assert set(published[-5:]) == {syrk(r) for r in changed}
    assert_each_once(published)
    assert table_versions(police_db, "syrk") <= set(published)


def test_a_connection_dropped_mid_poll_resumes_from_the_last_batch(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows)
    connector = connect()
    sent: list[int] = []

    def drop_after_second_batch(records: list[bytes]) -> None:
        sent.append(len(records))
        if len(sent) == 2:
            police_db.kill_connections()

    connector.publisher.hook = drop_after_second_batch
    with pytest.raises(SourceUnavailable):
        connector.source.poll()
    connector.publisher.hook = None
    assert connector.source.health.records == 2 * BATCH_ROWS
    committed = connector.committed()
    assert committed is not None
    assert committed["low"] == raw.batches("syrk")[1].cursor["low"]

    assert connector.drain() == len(county.syrk_rows) - 2 * BATCH_ROWS
    published = raw.versions("syrk")
    assert_each_once(published)
    assert set(published) == table_versions(police_db, "syrk")


def test_connections_killed_during_polls_lose_and_duplicate_nothing(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows)
    connector = connect()
    stop = threading.Event()
    kills: list[int] = []

    def database_restarts() -> None:
        while not stop.wait(0.015):
            kills.append(police_db.kill_connections())

    killer = threading.Thread(target=database_restarts, daemon=True)
    written = {syrk(r) for r in county.syrk_rows}
    failures = 0
    killer.start()
    try:
        deadline = time.monotonic() + 10
        step = 0
        while failures < 5 and time.monotonic() < deadline:
            step += 1
            row = dict(county.syrk_rows[step % 50], jzdz=f"伊山镇人民路{step}号", gxsj=at(step))
            police_db.upsert_syrk([row])  # the simulator's own session survives the kills
            written.add(syrk(row))
            try:
                connector.source.poll()
            except SourceUnavailable:
                failures += 1  # the next poll goes on from the last committed batch
    finally:
        stop.set()
        killer.join(timeout=5)
    assert failures == 5
    assert sum(kills) >= failures

    for _ in range(3):  # the database is back; a kill still in flight fails one more poll
        try:
            connector.drain()
            break
        except SourceUnavailable:
            continue
    published = raw.versions("syrk")
    assert_each_once(published)
    assert table_versions(police_db, "syrk") <= set(published)
    assert set(published) <= written


# --- 5. crash and restart -------------------------------------------------------------


def test_a_crash_after_the_broker_ack_republishes_that_batch_byte_for_byte(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows)
    connector = connect()
    sent: list[list[bytes]] = []

    def die_after_third_batch(records: list[bytes]) -> None:
        sent.append(records)
        if len(sent) == 3:
            raise SimulatedCrash

    connector.publisher.hook = die_after_third_batch
    with pytest.raises(SimulatedCrash):
        connector.source.poll()
    connector.publisher.hook = None
    in_flight = sent[2]

    # while the connector is down, a row of the batch in flight and a row it had not
    # reached yet change; the second one's old version is never seen
    unread = max(county.syrk_rows, key=lambda r: (r["gxsj"], r["rkbh"]))
    t = unread["gxsj"] + timedelta(seconds=1)
    first_in_flight = decode(in_flight[0])[1]
    changed = [
        dict(first_in_flight, jzdz=first_in_flight["jzdz"] + "北3室", gxsj=t),
        dict(unread, zxbz="1", gxsj=t),
    ]
    police_db.upsert_syrk(changed)

    connector.restart()
    connector.drain()

    records = raw.records("syrk")
    counts = Counter(records)
    assert max(counts.values()) == 2
    assert {r for r, c in counts.items() if c == 2} == set(in_flight[1:])
    published = {syrk(decode(r)[1]) for r in records}
    assert table_versions(police_db, "syrk") <= published
    assert published == {syrk(r) for r in [*county.syrk_rows, *changed]} - {syrk(unread)}


# --- 6. acknowledgement by the sink (embedded broker) ---------------------------------


def test_without_ack_on_publish_the_checkpoint_waits_for_a_contiguous_prefix(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows)
    connector = connect(ack_on_publish=False)
    assert connector.source.poll() == len(county.syrk_rows)
    batches = raw.batches("syrk")
    checkpoint = connector.source.checkpoints["syrk"]
    assert checkpoint.outstanding == len(batches)
    assert connector.committed() is None

    checkpoint.acknowledge(1)
    checkpoint.acknowledge(3)
    assert connector.committed() is None  # batch 0 is not stored yet
    checkpoint.acknowledge(0)
    committed = connector.committed()
    assert committed is not None
    low = batches[1].cursor["low"]
    assert committed == {
        "low": low,
        "seen": {
            row["rkbh"]: [stamp(row["gxsj"]), row_digest(row)]
            for batch in batches[:2]
            for row in batch.rows()
            if stamp(row["gxsj"]) >= low
        },
    }

    # kill -9 now: the restart publishes again exactly what was not acknowledged
    connector.restart()
    assert connector.drain() == sum(len(b.records) for b in batches[2:])
    replayed = raw.records("syrk")[len(county.syrk_rows) :]
    assert replayed == [record for b in batches[2:] for record in b.records]


# --- the thread loop ------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_run_recovers_from_a_dropped_connection_and_stops_on_request(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    police_db.load(county.syrk_rows)
    connector = connect()
    source = connector.source
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: source.health.caught_up)
        assert source.health.records == len(county.syrk_rows)
        police_db.kill_connections()
        changed = [dict(r, jzdz=r["jzdz"] + "南5室", gxsj=at(0)) for r in county.syrk_rows[:4]]
        police_db.upsert_syrk(changed)
        # the first poll after the kill fails; a later one publishes and reports healthy
        wait_until(
            lambda: source.health.records == len(county.syrk_rows) + 4 and source.health.healthy
        )
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert source.health.errors == 1
    assert source.health.healthy
    assert source.health.reason == ""
    published = raw.versions("syrk")
    assert_each_once(published)
    assert set(published) == {syrk(r) for r in [*county.syrk_rows, *changed]}


# --- a poll that fails part-way -------------------------------------------------------


class DroppingClient(PoliceClient):
    """The real client; the database drops its connections right before query ``drop_at``."""

    def __init__(self, db: PoliceDatabase) -> None:
        super().__init__(db.dsn)
        self.db = db
        self.queries = 0
        self.drop_at: int | None = None

    def query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        self.queries += 1
        if self.queries == self.drop_at:
            self.db.kill_connections()
        return super().query(sql, params)


def test_a_poll_failing_between_pages_forgets_what_it_had_not_published(
    police_db: PoliceDatabase, raw: RawTopics, connect: Callable[..., Connector], county: County
) -> None:
    connector = connect()
    client = DroppingClient(police_db)
    connector.source.client = client
    police_db.upsert_syrk([person(county, n, at(0)) for n in range(10)])
    assert connector.source.poll() == 10
    # next poll: page 1 is all known rows, page 2 holds 4 new ones (not a full batch),
    # and the database drops the connection before page 3
    fresh = [person(county, 10 + n, at(1)) for n in range(3)]
    fresh += [person(county, 20 + n, at(2)) for n in range(7)]
    police_db.upsert_syrk(fresh)
    client.queries, client.drop_at = 0, 3
    with pytest.raises(SourceUnavailable):
        connector.source.poll()
    assert client.queries == 3
    # the 4 rows taken from page 2 were never sent: the window is back at the checkpoint
    assert connector.source.windows["syrk"].position() == connector.committed()
    assert connector.drain() == 10  # the next call recovers without help
    published = raw.versions("syrk")
    assert_each_once(published)
    assert set(published) == table_versions(police_db, "syrk")


# --- property: random interleavings on a fake timeline --------------------------------

KEYS = 10
LATE_LIMIT = timedelta(seconds=10)  # spec: writers hold transactions for up to 10 s

some_keys = st.frozensets(st.integers(0, KEYS - 1), max_size=5)
rounds = st.lists(
    st.tuples(
        some_keys,  # rows rewritten at the current second
        st.frozensets(st.integers(0, KEYS - 1), max_size=2),  # rows a late writer takes
        st.integers(0, 4),  # seconds the clock moves on
        st.sampled_from(["poll", "poll", "crash-1", "crash-2", "restart", "drop", "none"]),
        st.booleans(),  # the oldest late writer commits
    ),
    min_size=3,
    max_size=10,
)


@dataclass
class LateWriter:
    """A transaction stamped ``stamp`` that other sessions cannot see until it commits."""

    stamp: datetime
    transaction: LateTransaction
    keys: set[int]
    versions: set[Version]
    overtaken: bool = False  # a completed poll already read rows stamped after it


class Timeline:
    """Writers, late writers, polls, crashes and restarts on a fake clock.

    It records every version written, the versions visible at each poll that
    completed (those must be published), and the records of batches in flight
    when the connector crashed (the only ones that may be published twice).
    Every write is stamped with the fake ``now``; a late transaction stamped T
    commits before ``now`` passes T + 10 s, as the spec bounds it.
    """

    def __init__(
        self, db: PoliceDatabase, connector: Connector, templates: list[dict[str, Any]]
    ) -> None:
        self.db = db
        self.connector = connector
        self.templates = templates
        self.now = T0
        self.variant = 0
        self.open: list[LateWriter] = []
        self.written: set[Version] = set()
        self.visible_at_polls: set[Version] = set()
        self.in_flight: set[bytes] = set()
        self.reader = TableReader(db)

    def play(self, step: tuple[frozenset[int], frozenset[int], int, str, bool]) -> None:
        """One round: writes, a late writer, the clock, the connector, a late commit."""
        writes, late, seconds, action, commit = step
        self.write(writes)
        self.late(late)
        self.tick(seconds)
        if action == "poll":
            self.poll()
        elif action.startswith("crash-"):
            self.crash(int(action.removeprefix("crash-")))
        elif action == "restart":
            self.connector.restart()
        elif action == "drop":
            self.drop()
        if commit:
            self.commit()

    def new_versions(self, chosen: frozenset[int]) -> tuple[set[int], list[dict[str, Any]]]:
        """Fresh content for the chosen rows no late writer holds (the write would block)."""
        free = set(chosen).difference(*(writer.keys for writer in self.open))
        rows = []
        for key in sorted(free):
            self.variant += 1
            template = self.templates[key]
            rows.append(dict(template, jzdz=f"{template['jzdz']}{self.variant}号", gxsj=self.now))
        return free, rows

    def tick(self, seconds: int) -> None:
        target = self.now + timedelta(seconds=seconds)
        while self.open and self.open[0].stamp + LATE_LIMIT < target:
            self.commit()
        self.now = target

    def write(self, chosen: frozenset[int]) -> None:
        _, rows = self.new_versions(chosen)
        if rows:
            self.db.upsert_syrk(rows)
            self.written |= {syrk(r) for r in rows}

    def late(self, chosen: frozenset[int]) -> None:
        keys, rows = self.new_versions(chosen)
        if rows:
            transaction = self.db.late_transaction()
            transaction.upsert_syrk(rows)
            self.open.append(LateWriter(self.now, transaction, keys, {syrk(r) for r in rows}))

    def commit(self) -> None:
        if self.open:
            writer = self.open.pop(0)
            writer.transaction.commit()
            self.written |= writer.versions
            if writer.overtaken:
                event("a late commit landed behind rows already read")

    def poll(self) -> bool:
        """One poll; True when it completed."""
        try:
            self.connector.source.poll()
        except SourceUnavailable:
            event("a poll failed")  # the next one goes on from the last committed batch
            return False
        visible = self.reader.versions("syrk")
        self.visible_at_polls |= visible
        newest = max((v[-1] for v in visible), default=None)
        for writer in self.open:
            writer.overtaken |= newest is not None and newest > writer.stamp
        return True

    def crash(self, after: int) -> None:
        """A poll during which the process dies right after the broker took batch ``after``."""
        sent = 0

        def die(records: list[bytes]) -> None:
            nonlocal sent
            sent += 1
            if sent == after:
                self.in_flight.update(records)
                raise SimulatedCrash

        self.connector.publisher.hook = die
        try:
            self.poll()
        except SimulatedCrash:
            event("crashed between the broker's ack and the checkpoint's")
            self.connector.restart()
        finally:
            self.connector.publisher.hook = None

    def drop(self) -> None:
        """The database restarts: sessions drop and open transactions are rolled back."""
        self.db.kill_connections()
        self.abandon()

    def finish(self) -> None:
        """Every writer commits, then polls run until one completes."""
        while self.open:
            self.commit()
        assert self.poll() or self.poll()

    def truncate(self) -> None:
        """Start from an empty table (the database outlives one example)."""
        self.reader.execute("TRUNCATE TABLE syrk")

    def close(self) -> None:
        """Roll back the writers still open (the table is truncated next) and disconnect."""
        self.abandon()
        self.reader.close()

    def abandon(self) -> None:
        for writer in self.open:
            with contextlib.suppress(pymysql.err.Error):  # its session may be gone already
                writer.transaction.rollback()
        self.open.clear()


@pytest.fixture(scope="module")
def residents(county: County) -> list[dict[str, Any]]:
    """The rows the random writers keep rewriting (a few, so that they collide)."""
    return [person(county, n, T0) for n in range(KEYS)]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=rounds)
def test_random_interleavings_publish_every_visible_version_once_in_effect(
    police_db: PoliceDatabase,
    broker: EmbeddedBroker,
    tmp_path: Path,
    residents: list[dict[str, Any]],
    steps: list[tuple[frozenset[int], frozenset[int], int, str, bool]],
) -> None:
    raw = RawTopics(broker.bootstrap)
    connector = Connector(police_db, raw, tmp_path / secrets.token_hex(4))
    timeline = Timeline(police_db, connector, residents)
    try:
        timeline.truncate()
        for step in steps:
            timeline.play(step)
        timeline.finish()
        assert connector.source.poll() == 0
        latest = timeline.reader.versions("syrk")
    finally:
        timeline.close()
        connector.close()

    records = raw.records("syrk")
    versions = [syrk(decode(record)[1]) for record in records]
    published = set(versions)
    assert latest <= published  # the latest version of every row
    assert timeline.visible_at_polls <= published  # whatever a completed poll could see
    assert published <= timeline.written  # nothing invented, nothing uncommitted
    repeated = {record for record, count in Counter(records).items() if count > 1}
    assert repeated <= timeline.in_flight  # only a crash republishes
    if repeated:
        event("a crash republished records")
    encodings: defaultdict[Version, set[bytes]] = defaultdict(set)
    for v, record in zip(versions, records, strict=True):
        encodings[v].add(record)
    assert all(len(e) == 1 for e in encodings.values())  # a republish is the same bytes
