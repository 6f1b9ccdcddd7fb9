r"""The Faust wiring of the stages (their logic lives in their own modules).

``raw.*`` --route--> ``person`` --merge--> ``rows`` --sink--> ClickHouse
               \--> ``dead_letters`` --sink--> ClickHouse

Every message is a batch (an Envelope or a RowBatch), so Faust's per-message
cost is paid once per few hundred records. ``person`` is partitioned by
resident, so the merge of a resident always runs where its state is.

Where the merge runs in the process that holds the store
(``[hub] merge_process = false``), it stores its rows itself, like a Kafka
Streams sink processor, and ``rows`` is not used. Otherwise it runs in its
own process (``gridhub.merge_worker``) and sends one RowBatch per batch.
Either way a resident's state is saved only after its rows are stored or
accepted by Kafka, and a replayed event emits its resident's row again, so
rows lost with the embedded broker in a crash come back when the connectors
pull again from their checkpoints (which move only once rows are stored).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from gridhub.connectors.base.checkpoint import FOREIGN_SEQ_START, SinkAcknowledgements
from gridhub.schemas import SchemaError, decode, encode_dict
from gridhub.streams.canonicalize import MAPPERS
from gridhub.streams.identity import ResidentKeyer, partition_for
from gridhub.streams.merge_resident import ResidentMerger
from gridhub.streams.normalize import normalize_id_number
from gridhub.streams.phone_link import WITHDRAW, Forward, Letter, PhoneIndex, PhoneOutput
from gridhub.streams.route import (
    BROADCAST,
    BROADCAST_KEY,
    PERSON_ID,
    Rejected,
    dead_letter,
    decode_record,
    partition_of_key,
    raw_head,
    route,
)
from gridhub.streams.row_batch import Part, pack_rows, unpack_into
from gridhub.streams.sink import BatchingSink
from gridhub.streams.writer_schema import WriterSchemas, resolve_foreign
from kafka import KafkaProducer

from gridhub.errors import SinkBackpressure
from gridhub.logs import get_logger
from gridhub.reference import ReferenceData
from gridhub.topics import Topics

log = get_logger("streams.topology")

EXPIRY_CHECK_SECONDS = 60.0
"""How often the merge looks for assistance whose end date has come."""

PHONE_CLAIMS = "phone_claims"
"""Envelopes of PhoneClaims on ``phones`` (source ``hub``)."""

REFERENCE_RELOAD = "reference_reload"
"""The control record ``gridhub reference reload`` sends to every partition of ``person``
(source ``hub``): load the grid map again and re-place the residents it moves."""


@dataclass
class StageCounters:
    """Records through each stage, for status and metrics."""

    routed: int = 0
    dead_letters: int = 0
    merged: int = 0
    sunk_rows: int = 0
    sink_retries: int = 0
    last_sink_at: datetime | None = None
    sink_failing: str = ""
    """Why the sink's last insert failed, while it retries ("" once one worked)."""
    inserts: int = 0
    """Inserts that stored rows (counted only under the failpoint below)."""


@dataclass
class Topology:
    """What the agents need, built once per process."""

    app_id: str
    bootstrap: str
    topics: Topics
    partitions: int
    keyer: ResidentKeyer
    merger: ResidentMerger | None
    """None when a merge process runs the merge (this process then stores its RowBatches)."""
    phone_index: PhoneIndex | None
    """The phone stage's state, where this process merges."""
    sink: BatchingSink
    dead_sink: BatchingSink
    batch_rows: int
    batch_seconds: float
    counters: StageCounters
    on_tick: Callable[[faust.App], Any] | None = None
    reference: Callable[[], ReferenceData] | None = None
    """Loads the grid map again (``gridhub reference reload``), when this process merges."""
    stored_parts: list[tuple[str, str, int, int, int]] = field(default_factory=list)
    """Parts stored since the last acks were sent (when acks go over Kafka)."""
    writer_schemas: WriterSchemas | None = None
    """Resolves single records written with a registry id outside the catalog."""
    resend: bool = False
    """Send phone claims and phone-linked records again when a partition is taken (the
    embedded broker forgets them in a crash)."""


def _envelope(
    head: dict[str, Any], records: list[bytes], part: int, parts: int, keys: list[str]
) -> bytes:
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
            "keys": keys,
        },
    )


def new_app(app_id: str, bootstrap: str, partitions: int) -> faust.App:
    """A Faust app tuned for batches (Envelopes) and for Tansu's group joins."""
    return faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=partitions,
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


def add_route_agent(
    app: faust.App,
    topics: Topics,
    keyer: ResidentKeyer,
    partitions: int,
    counters: StageCounters,
    writer_schemas: WriterSchemas | None = None,
) -> None:
    """Stage 1 (``streams/route.py``) on ``raw.*``, in this app; with ``writer_schemas``,
    a single record whose schema id the catalog lacks is first resolved through the
    schema registry (``streams/writer_schema.py``)."""
    raw = app.topic(*topics.all_raw(), value_serializer="raw", key_serializer="raw")
    person = app.topic(topics.person, value_serializer="raw", partitions=partitions)
    phones = app.topic(topics.phones, value_serializer="raw", partitions=partitions)
    dead = app.topic(topics.dead_letters, value_serializer="raw", partitions=1)

    @app.agent(raw)
    async def route_agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            seq = FOREIGN_SEQ_START + message.offset  # a single record: outside any connector's
            try:
                value = event.value
                if writer_schemas is not None and writer_schemas.is_foreign(value):
                    value = await resolve_foreign(writer_schemas, message.topic, value)
                head = raw_head(message.topic, topics.prefix, value, _headers(message.headers), seq)
            except Rejected as exc:
                source, _, entity = message.topic.removeprefix(f"{topics.prefix}.raw.").partition(
                    "."
                )
                letter = dead_letter(source, entity or "unknown", exc.reason, event.value, "")
                head = {"source": source, "entity": entity, "seq": seq, "cursor": "{}"}
                await dead.send(value=_envelope(head, [letter], 0, 1, []))
                counters.dead_letters += 1
                continue
            batch = route(head["source"], head["entity"], head["records"], keyer, partitions)
            parts = batch.parts
            for part, (partition, (records, keys)) in enumerate(sorted(batch.routed.items())):
                await person.send(
                    value=_envelope(head, records, part, parts, keys), partition=partition
                )
            first = len(batch.routed)
            for part, (partition, (records, keys)) in enumerate(
                sorted(batch.by_phone.items()), start=first
            ):
                await phones.send(
                    value=_envelope(head, records, part, parts, keys), partition=partition
                )
            if batch.dead_letters:
                await dead.send(value=_envelope(head, batch.dead_letters, parts - 1, parts, []))
            counters.routed += len(head["records"])
            counters.dead_letters += len(batch.dead_letters)


def _headers(raw: Any) -> dict[str, bytes]:
    """Kafka headers as a dict with lower-case names (they come as pairs or as a mapping)."""
    pairs = raw.items() if isinstance(raw, dict) else (raw or ())
    return {str(name).lower(): bytes(value or b"") for name, value in pairs}


def add_ack_agent(app: faust.App, topics: Topics, acks: SinkAcknowledgements) -> None:
    """Stored parts (BatchAck) move the connectors' checkpoints in this process."""
    channel = app.topic(topics.acks, value_serializer="raw", partitions=1)

    @app.agent(channel)
    async def ack_agent(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            _, ack = decode(value)
            acks.part_done(ack["source"], ack["entity"], ack["seq"], ack["part"], ack["parts"])


Deliver = Callable[[list[tuple[str, dict[str, Any]]], list[Part], list[int]], Awaitable[None]]
"""Takes a batch's merged rows, the parts they cover and the source times (epoch ms) of its
new records; returns once they are safe."""


def add_merge_agent(
    app: faust.App,
    topics: Topics,
    partitions: int,
    merger: ResidentMerger,
    counters: StageCounters,
    batch_rows: int,
    batch_seconds: float,
    deliver: Deliver,
    *,
    owned: Callable[[], set[int]] | None = None,
    batch_lock: asyncio.Lock | None = None,
    after_batch: Callable[[], None] | None = None,
    reference: Callable[[], ReferenceData] | None = None,
    resend_claims: bool = False,
) -> None:
    """Stage 2 (``streams/merge_resident.py``) on ``person``, in this app.

    Works in batches of envelopes (up to ``batch_rows`` records or
    ``batch_seconds``); the states a batch changed are saved after ``deliver``.
    With several merge processes, ``owned`` tells which partitions this one
    holds: an envelope of a partition a rebalance took away is left to its
    new owner (whose consumer reads it again), so a resident's state is only
    ever changed by one process. ``batch_lock`` is held while a batch is in
    hand, and ``after_batch`` runs once it is saved. ``reference`` loads the grid map
    again when a ``reference_reload`` control record arrives (``gridhub reference
    reload``); each partition re-places its residents once it sees the new map in use.
    The phone claims a batch makes go to ``phones`` before its states are saved;
    ``resend_claims`` (the embedded broker) sends a partition's claims again when this
    process takes it.
    """
    person = app.topic(topics.person, value_serializer="raw", partitions=partitions)
    send_claims = claims_sender(app, topics, partitions)
    max_envelopes = max(1, batch_rows // 500)
    lock = batch_lock or asyncio.Lock()
    claims_resent: set[int] = set()

    @app.agent(person)
    async def merge_agent(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(max_envelopes, within=batch_seconds):
            async with lock:
                heads = [decode(value)[1] for value in values]
                loaded = None
                if reference is not None and any(h["entity"] == REFERENCE_RELOAD for h in heads):
                    loaded = await _load_reference(reference)
                mine = owned() if owned is not None else None
                batch = merge_heads(merger, heads, partitions, mine, loaded)
                counters.merged += batch.merged
                if batch.parts:
                    await deliver(batch.rows, batch.parts, batch.event_times)
                    await send_claims(merger.take_claims())
                    merger.commit()
                if after_batch is not None:
                    after_batch()

    @app.timer(EXPIRY_CHECK_SECONDS)
    async def expire_assistance() -> None:
        """Assistance whose end date has come changes residents without any record: look
        the dates up (an index the state keeps) and rebuild those residents."""
        async with lock:
            mine = owned() if owned is not None else set(range(partitions))
            rows: list[tuple[str, dict[str, Any]]] = []
            for partition in sorted(mine):
                rows.extend(merger.expire(partition))
            if rows:
                await deliver(rows, [], [])
                await send_claims(merger.take_claims())
                merger.commit()

    if resend_claims:

        @app.timer(1.0)
        async def resend_phone_claims() -> None:
            """Once per partition this process takes: tell the phone stage every claim
            again, which the embedded broker may have forgotten with a crash (a claim the
            phone stage holds already changes nothing)."""
            async with lock:
                mine = owned() if owned is not None else set(range(partitions))
                claims_resent.intersection_update(mine)
                for partition in sorted(mine - claims_resent):
                    await send_claims(merger.claims_of(partition))
                    claims_resent.add(partition)


def claims_sender(
    app: faust.App, topics: Topics, partitions: int
) -> Callable[[list[dict[str, Any]]], Awaitable[None]]:
    """Send PhoneClaims to ``phones``, one Envelope per partition; returns once Kafka
    has them."""
    channel = app.topic(topics.phones, value_serializer="raw", partitions=partitions)

    async def send(claims: list[dict[str, Any]]) -> None:
        for value, partition in claim_envelopes(claims, partitions):
            delivered = await channel.send(value=value, partition=partition)
            await delivered

    return send


def claim_envelopes(claims: list[dict[str, Any]], partitions: int) -> list[tuple[bytes, int]]:
    """PhoneClaims as one Envelope per partition of ``phones`` (keyed by phone)."""
    by_partition: dict[int, tuple[list[bytes], list[str]]] = {}
    for claim in claims:
        records, keys = by_partition.setdefault(partition_for(claim["phone"], partitions), ([], []))
        records.append(encode_dict("PhoneClaim", claim))
        keys.append(claim["phone"])
    head = {"source": "hub", "entity": PHONE_CLAIMS, "seq": FOREIGN_SEQ_START, "cursor": "{}"}
    return [
        (_envelope(head, records, 0, 1, keys), partition)
        for partition, (records, keys) in sorted(by_partition.items())
    ]


def add_phone_agent(
    app: faust.App,
    topics: Topics,
    partitions: int,
    index: PhoneIndex,
    counters: StageCounters,
    batch_seconds: float,
    *,
    owned: Callable[[], set[int]] | None = None,
    resend: bool = False,
    after_batch: Callable[[], None] | None = None,
    lock: asyncio.Lock | None = None,
) -> None:
    """Stage 1b (``streams/phone_link.py``) on ``phones``, in this app.

    A batch's copies go to ``person`` and are accepted by Kafka before its phone states
    are saved; only then does each input part go on to the dead-letter topic (with the
    person records no resident takes), where the sink stores it and reports the part
    done, so a connector's checkpoint moves only past records the phone stage keeps.
    ``resend`` (the embedded broker) sends every record of a partition again when this
    process takes it: copies the broker forgot in a crash come back.
    """
    phones = app.topic(topics.phones, value_serializer="raw", partitions=partitions)
    person = app.topic(topics.person, value_serializer="raw", partitions=partitions)
    dead = app.topic(topics.dead_letters, value_serializer="raw", partitions=1)
    resent: set[int] = set()
    lock = lock or asyncio.Lock()

    async def send(batch: LinkedBatch) -> None:
        for value, partition in forward_envelopes(batch.out.forwards, partitions):
            await (await person.send(value=value, partition=partition))
        index.commit()
        for value in batch.part_envelopes():
            await (await dead.send(value=value))
        counters.dead_letters += batch.letters

    @app.agent(phones)
    async def phone_agent(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(64, within=batch_seconds):
            async with lock:
                mine = owned() if owned is not None else None
                batch = link_heads(index, [decode(v)[1] for v in values], partitions, mine)
                counters.routed += batch.records
                await send(batch)
            if after_batch is not None:
                after_batch()

    if resend:

        @app.timer(1.0)
        async def resend_records() -> None:
            async with lock:
                mine = owned() if owned is not None else set(range(partitions))
                resent.intersection_update(mine)
                for partition in sorted(mine - resent):
                    batch = LinkedBatch()
                    for phone in index.store.phones(partition):
                        index.resend(phone, batch.out)
                    await send(batch)
                    resent.add(partition)


@dataclass
class LinkedBatch:
    """What one batch of ``phones`` envelopes made: the copies for ``person``, and per
    input part the person records no resident takes (dead letters)."""

    out: PhoneOutput = field(default_factory=PhoneOutput)
    parts: list[tuple[dict[str, Any], list[Letter]]] = field(default_factory=list)
    records: int = 0

    @property
    def letters(self) -> int:
        return sum(len(letters) for _, letters in self.parts)

    def part_envelopes(self) -> list[bytes]:
        """One dead-letter Envelope per input part (letters or none): the sink stores it
        and reports the part done, as for every other part of a connector batch."""
        return [
            _envelope(
                head,
                [dead_letter(x.source, x.entity, x.reason, x.raw, x.source_key) for x in letters],
                head["part"],
                head["partition_count"],
                [],
            )
            for head, letters in self.parts
        ]


def link_heads(
    index: PhoneIndex, heads: list[dict[str, Any]], partitions: int, mine: set[int] | None
) -> LinkedBatch:
    """Stage 1b over decoded envelopes of ``phones`` (records and claims)."""
    batch = LinkedBatch()
    out = batch.out
    for head in heads:
        keys = head["keys"]
        if mine is not None and keys and partition_for(keys[0], partitions) not in mine:
            continue
        if head["entity"] == PHONE_CLAIMS:
            for raw, phone in zip(head["records"], keys, strict=True):
                _, claim = decode(raw)
                index.claim(phone, claim["resident_key"], claim["name"], claim["present"], out)
            continue
        first = len(out.letters)
        for raw, phone in zip(head["records"], keys, strict=True):
            index.add_record(phone, phone_record(head["source"], head["entity"], raw), raw, out)
            batch.records += 1
        batch.parts.append((head, out.letters[first:]))
        del out.letters[first:]
    if out.letters:  # person records a claim left without a resident
        batch.parts.append(({**_LETTERS_HEAD, "seq": FOREIGN_SEQ_START}, out.letters))
        out.letters = []
    return batch


_LETTERS_HEAD = {
    "source": "hub",
    "entity": "phones",
    "cursor": "{}",
    "part": 0,
    "partition_count": 1,
}
"""Dead letters the phone stage finds outside any input part (after a claim)."""


def phone_record(source: str, entity: str, raw: bytes) -> dict[str, Any]:
    """What rule 2 reads of a record: whose record it is in its source, its version and
    the name it gives (through the same canonical mapping the merge uses)."""
    data = decode_record(entity, raw, validate=False)
    event = MAPPERS[(source, entity)](data, None, datetime.now(UTC))
    column = PERSON_ID.get(entity)
    return {
        "source": source,
        "entity": entity,
        "source_key": event["source_key"],
        "event_time": event["event_time"].timestamp(),
        "name": event.get("name"),
        "id_reason": str(normalize_id_number(data[column]).reason) if column else "",
    }


_last_stamp = datetime.min.replace(tzinfo=UTC)


def _decision_stamp() -> datetime:
    """Now, to the millisecond the store keeps, and later than any stamp before in this
    process: a record's copies from two batches must not tie (one process decides a
    phone at a time)."""
    global _last_stamp
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    _last_stamp = max(now, _last_stamp + timedelta(milliseconds=1))
    return _last_stamp


def forward_envelopes(forwards: list[Forward], partitions: int) -> list[tuple[bytes, int]]:
    """The phone stage's copies as one Envelope per (partition of ``person``, entity)."""
    grouped: dict[tuple[int, str, str, bool], list[Forward]] = {}
    for forward in forwards:
        where = (partition_for(forward.key, partitions), forward.source, forward.entity)
        grouped.setdefault((*where, forward.again), []).append(forward)
    out = []
    for (partition, source, entity, again), group in sorted(grouped.items()):
        head = {"source": source, "entity": entity, "seq": FOREIGN_SEQ_START, "cursor": "{}"}
        value = encode_dict(
            "Envelope",
            {
                **head,
                "produced_at": _decision_stamp(),
                "records": [f.raw for f in group],
                "partition_count": 1,
                "part": 0,
                "keys": [f.key for f in group],
                "links": [f.link for f in group],
                "whys": [f.why for f in group],
                "again": again,
            },
        )
        out.append((value, partition))
    return out


def notify_partitions(bootstrap: str, topics: Topics, partitions: int, entity: str) -> None:
    """Send a control record of source ``hub`` (no records) to every partition of
    ``person``, so that whoever merges each partition acts on it in order with its data."""
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    try:
        for partition in range(partitions):
            head = {"source": "hub", "entity": entity, "seq": FOREIGN_SEQ_START, "cursor": "{}"}
            value = _envelope(head, [], partition, partitions, [f"{BROADCAST_KEY}{partition}"])
            producer.send(topics.person, value=value, partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


async def _load_reference(reference: Callable[[], ReferenceData]) -> ReferenceData | None:
    """Load the grid map again; None when the folder does not load (the map in use stays)."""
    try:
        return await asyncio.to_thread(reference)
    except Exception as exc:  # the command checked the folder; it may have changed since
        log.error("reference reload refused; the grid map in use stays", reason=str(exc))
        return None


@dataclass
class MergedBatch:
    """What one batch of ``person`` envelopes made."""

    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    merged: int = 0
    event_times: list[int] = field(default_factory=list)
    """Source times (epoch ms) of the new records, for freshness: not of what the phone
    stage sends again after a claim (as old as its record, not late), nor withdrawals."""


def merge_heads(
    merger: ResidentMerger,
    heads: list[dict[str, Any]],
    partitions: int,
    mine: set[int] | None,
    reference: ReferenceData | None = None,
) -> MergedBatch:
    """Stage 2 over decoded envelopes of ``person``: the rows to store and the parts they
    cover. Envelopes of partitions not in ``mine`` are left to their owner; a
    ``reference_reload`` record switches to ``reference`` (already loaded) first."""
    batch = MergedBatch()
    for head in heads:
        keys = head["keys"]
        partition = partition_of_key(keys[0], partitions) if keys else None
        if mine is not None and partition is not None and partition not in mine:
            continue
        if partition is not None:
            new_map = reference if head["entity"] == REFERENCE_RELOAD else None
            if new_map is not None and merger.use_reference(new_map):
                log.info("grid map reloaded", fingerprint=new_map.fingerprint[:12])
            batch.rows.extend(merger.ensure_placed(partition))
        if head["entity"] in BROADCAST:
            assert partition is not None  # the route stage keys every copy
            editions = [
                decode_record(head["entity"], raw, validate=False) for raw in head["records"]
            ]
            batch.rows.extend(merger.apply_editions(partition, editions))
        elif head["entity"] != REFERENCE_RELOAD:
            events = to_person_events(head)
            batch.rows.extend(merger.merge(events))
            batch.merged += len(events)
            batch.event_times += [
                round(e["event_time"].timestamp() * 1000)
                for e in events
                if not e.get("again") and not e.get("withdraw")
            ]
        batch.parts.append(
            (head["source"], head["entity"], head["seq"], head["part"], head["partition_count"])
        )
    return batch


def rows_sender(app: faust.App, topics: Topics, partitions: int) -> Deliver:
    """Deliver merged rows as one RowBatch on ``rows``; returns once Kafka has it."""
    channel = app.topic(topics.rows, value_serializer="raw", partitions=partitions)

    async def send(
        rows: list[tuple[str, dict[str, Any]]], parts: list[Part], event_times: list[int]
    ) -> None:
        packed = await asyncio.to_thread(pack_rows, rows, parts, event_times)
        delivered = await channel.send(value=packed)
        await delivered

    return send


def build_app(t: Topology, *, with_route: bool = True) -> faust.App:
    """The hub's app: the merge agent storing its rows (or, with a merge process, the
    sink agent on ``rows``), the dead-letter agent, a status timer, and the route agent
    unless the ingest process runs it (``[hub] ingest_process``)."""
    app = new_app(t.app_id, t.bootstrap, t.partitions)
    if with_route:
        add_route_agent(app, t.topics, t.keyer, t.partitions, t.counters, t.writer_schemas)
    dead = app.topic(t.topics.dead_letters, value_serializer="raw", partitions=1)
    acks = app.topic(t.topics.acks, value_serializer="raw", partitions=1)
    max_envelopes = max(1, t.batch_rows // 500)

    if t.merger is not None:

        async def store_here(
            rows: list[tuple[str, dict[str, Any]]], parts: list[Part], event_times: list[int]
        ) -> None:
            t.sink.add_rows(rows)
            t.sink.event_time_ms.extend(event_times)
            for part in parts:
                t.sink.add_part(*part)
            await _flush_until_stored(t, t.sink)
            await _send_acks(t, acks)

        add_merge_agent(
            app,
            t.topics,
            t.partitions,
            t.merger,
            t.counters,
            t.batch_rows,
            t.batch_seconds,
            store_here,
            reference=t.reference,
            resend_claims=t.resend,
        )
        assert t.phone_index is not None
        add_phone_agent(
            app,
            t.topics,
            t.partitions,
            t.phone_index,
            t.counters,
            t.batch_seconds,
            resend=t.resend,
        )
    else:
        rows = app.topic(t.topics.rows, value_serializer="raw", partitions=t.partitions)

        @app.agent(rows)
        async def sink_agent(stream: faust.StreamT[bytes]) -> None:
            async for values in stream.take(8, within=t.batch_seconds):
                for value in values:
                    try:
                        unpack_into(t.sink, decode(value)[1])
                    except SchemaError as exc:  # a merge process of another version
                        t.sink.add_rows([("DeadLetter", unreadable_rows(value, exc))])
                await _flush_until_stored(t, t.sink)
                await _send_acks(t, acks)

    @app.agent(dead)
    async def dead_letter_agent(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(max_envelopes, within=t.batch_seconds):
            for value in values:
                t.dead_sink.add(decode(value)[1])
            await _flush_until_stored(t, t.dead_sink)
            await _send_acks(t, acks)

    @app.timer(1.0)
    async def status_tick() -> None:
        if t.on_tick is not None:
            await asyncio.to_thread(t.on_tick, app)

    return app


def unreadable_rows(value: bytes, exc: Exception) -> dict[str, Any]:
    """A DeadLetter row for a RowBatch this process cannot read: its rows are not stored,
    and the reason says what to do."""
    return {
        "source": "hub",
        "entity": "rows",
        "source_key": "",
        "reason": f"merged rows this hub cannot read ({exc}); a merge process of another "
        "version sent them: run one version, then `gridhub replay` the sources since then",
        "raw": value,
        "received_at": datetime.now(UTC),
    }


def to_person_events(head: dict[str, Any]) -> list[dict[str, Any]]:
    """The canonical person events of one routed envelope.

    Copies from the phone stage carry each record's link rule (``withdraw`` takes
    the record back from this key) and, when it waits unlinked, why; they are stamped
    with when the phone stage decided, so that the newest decision about a record
    wins in the store whichever partition is merged first.
    """
    mapper = MAPPERS[(head["source"], head["entity"])]
    links: list[str] = head.get("links") or []
    whys: list[str] = head.get("whys") or []
    now = head["produced_at"] if links else datetime.now(UTC)
    events = []
    for index, (raw, key) in enumerate(zip(head["records"], head["keys"], strict=True)):
        event = mapper(
            decode_record(head["entity"], raw, validate=False),
            None if key.startswith("u") else key,
            now,
        )
        if head.get("again"):
            event["again"] = True
        if links:
            link = links[index]
            if link == WITHDRAW:
                event["withdraw"] = True
            else:
                event["link_rule"] = link or "none"
            event["why"] = whys[index] if index < len(whys) else ""
        events.append(event)
    return events


async def _send_acks(t: Topology, channel: faust.TopicT) -> None:
    """Tell the ingest process which parts are stored (only when it waits for that)."""
    stored, t.stored_parts[:] = list(t.stored_parts), []
    for source, entity, seq, part, parts in stored:
        ack = {"source": source, "entity": entity, "seq": seq, "part": part, "parts": parts}
        await channel.send(value=encode_dict("BatchAck", ack))


async def _flush_until_stored(t: Topology, sink: BatchingSink) -> None:
    """Insert the batch; while ClickHouse refuses, wait and retry (offsets stay put)."""
    delay = 0.5
    while True:
        try:
            rows = await asyncio.to_thread(sink.flush)
        except SinkBackpressure as exc:
            t.counters.sink_retries += 1
            t.counters.sink_failing = str(exc)
            log.warning("sink waiting for ClickHouse", reason=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        t.counters.sunk_rows += rows
        t.counters.sink_failing = ""
        t.counters.last_sink_at = datetime.now(UTC)
        if rows:
            _failpoint_after_insert(t.counters)
        return


FAILPOINT_EXIT_AFTER_INSERTS = "GRIDHUB_FAILPOINT_EXIT_AFTER_INSERTS"
"""Fault injection for tests (unset in any deployment): the process dies at once, as a
``kill -9`` would, after this many inserts, between an insert and its acknowledgement and
offset commit (tests/e2e/test_police_path.py)."""


def _failpoint_after_insert(counters: StageCounters) -> None:
    limit = os.environ.get(FAILPOINT_EXIT_AFTER_INSERTS)
    if not limit:
        return
    counters.inserts += 1
    if counters.inserts >= int(limit):
        log.warning("failpoint: dying between insert and commit", inserts=counters.inserts)
        os._exit(137)
