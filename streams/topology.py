"""The Faust wiring of the three stages (the logic lives in their modules).

``raw.*`` --canonicalize--> ``person`` --merge_resident--> ``sink`` --sink--> ClickHouse
                      \\--> ``dead_letters`` ------------------------/

Every message is an Envelope (a batch), so the per-message cost of Faust is
paid once per few hundred records. ``person`` and ``sink`` are co-partitioned
by resident: the merge of a resident always runs where its state is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from gridhub.schemas import decode, encode_dict
from gridhub.streams.canonicalize import canonicalize
from gridhub.streams.identity import ResidentKeyer
from gridhub.streams.merge_resident import MergeContext, ResidentStore, merge_batch
from gridhub.streams.sink import BatchingSink

from gridhub.errors import SinkBackpressure
from gridhub.logs import get_logger
from gridhub.topics import Topics

log = get_logger("streams.topology")


@dataclass
class StageCounters:
    """Records through each stage, for status and metrics."""

    canonicalized: int = 0
    dead_letters: int = 0
    merged: int = 0
    sunk_rows: int = 0
    sunk_batches: int = 0
    sink_retries: int = 0
    last_sink_at: datetime | None = None


@dataclass
class Topology:
    """What the agents need, built once per process."""

    app_id: str
    bootstrap: str
    topics: Topics
    partitions: int
    keyer: ResidentKeyer
    store: ResidentStore
    merge: MergeContext
    sink: BatchingSink
    batch_rows: int
    batch_seconds: float
    counters: StageCounters
    on_tick: Callable[[faust.App], Any] | None = None


def _envelope(head: dict[str, Any], records: list[bytes], part: int, parts: int) -> bytes:
    return encode_dict(
        "Envelope",
        {
            "source": head["source"],
            "entity": head["entity"],
            "seq": head["seq"],
            "cursor": head["cursor"],
            "produced_at": datetime.now(UTC),
            "records": records,
            "partition_count": parts,
            "part": part,
        },
    )


def build_app(t: Topology) -> faust.App:
    """A Faust app with the three agents and a status timer."""
    app = faust.App(
        t.app_id,
        broker=f"kafka://{t.bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=t.partitions,
        consumer_auto_offset_reset="earliest",
        # Tansu answers JoinGroup after half the session timeout; keep it short.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
        broker_commit_interval=1.0,
        producer_max_request_size=16 * 1024 * 1024,
        consumer_max_fetch_size=16 * 1024 * 1024,
        stream_buffer_maxsize=64,
    )
    raw = app.topic(*t.topics.all_raw(), value_serializer="raw", key_serializer="raw")
    person = app.topic(t.topics.person, value_serializer="raw", partitions=t.partitions)
    sink_topic = app.topic(t.topics.sink, value_serializer="raw", partitions=t.partitions)
    dead = app.topic(t.topics.dead_letters, value_serializer="raw", partitions=1)
    rows_in = app.topic(t.topics.sink, t.topics.dead_letters, value_serializer="raw")

    @app.agent(raw)
    async def canonicalize_agent(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            _, head = decode(value)
            batch = canonicalize(
                head["source"], head["entity"], head["records"], t.keyer, t.partitions
            )
            parts = batch.parts
            for part, (partition, records) in enumerate(sorted(batch.events.items())):
                await person.send(value=_envelope(head, records, part, parts), partition=partition)
            if batch.dead_letters:
                await dead.send(value=_envelope(head, batch.dead_letters, parts - 1, parts))
            t.counters.canonicalized += len(head["records"])
            t.counters.dead_letters += len(batch.dead_letters)

    @app.agent(person)
    async def merge_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            _, head = decode(event.value)
            events = [decode(record)[1] for record in head["records"]]
            rows = merge_batch(events, t.store, t.merge)
            encoded = [encode_dict(name, row) for name, row in rows]
            await sink_topic.send(
                value=_envelope(head, encoded, head["part"], head["partition_count"]),
                partition=event.message.partition,
            )
            t.counters.merged += len(events)

    @app.agent(rows_in)
    async def sink_agent(stream: faust.StreamT[bytes]) -> None:
        max_envelopes = max(1, t.batch_rows // 200)
        async for values in stream.take(max_envelopes, within=t.batch_seconds):
            for value in values:
                t.sink.add(decode(value)[1])
            await _flush_until_stored(t)

    @app.timer(1.0)
    async def status_tick() -> None:
        if t.on_tick is not None:
            await asyncio.to_thread(t.on_tick, app)

    return app


async def _flush_until_stored(t: Topology) -> None:
    """Insert the batch; while ClickHouse refuses, wait and retry (offsets stay put)."""
    delay = 0.5
    while True:
        try:
            rows = await asyncio.to_thread(t.sink.flush)
        except SinkBackpressure as exc:
            t.counters.sink_retries += 1
            log.warning("sink waiting for ClickHouse", reason=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        t.counters.sunk_rows += rows
        t.counters.sunk_batches += 1
        t.counters.last_sink_at = datetime.now(UTC)
        return
