"""Positions kept in the compacted checkpoints topic, on the embedded Tansu broker.

Tansu answers ListOffsets(latest) with the last batch's base offset + 1, so a
reader that stopped there would miss every later record of a batch of several.
These tests write batches of several records and check that a load still sees
the last position of every key.
"""

from __future__ import annotations

import json
import secrets

from gridhub.connectors.base.checkpoint import Checkpoint
from gridhub.connectors.base.kafka_checkpoint_store import KafkaCheckpointStore
from kafka import KafkaProducer

from gridhub.ownership import create_coordination_topics
from gridhub.runtime.broker import EmbeddedBroker
from gridhub.topics import Topics


def fresh_topics(broker: EmbeddedBroker) -> Topics:
    topics = Topics(prefix=f"cp{secrets.token_hex(5)}")
    create_coordination_topics(broker.bootstrap, topics)
    return topics


def test_positions_round_trip_and_a_new_store_reads_the_last_of_each_key(
    broker: EmbeddedBroker,
) -> None:
    topics = fresh_topics(broker)
    writer = KafkaCheckpointStore(broker.bootstrap, topics.checkpoints)
    try:
        assert writer.load("police", "syrk") is None
        for n in range(5):
            writer.save("police", "syrk", {"low": f"2026-01-0{n + 1} 00:00:00", "seen": {}})
            writer.save("police", "jq", {"low": None, "seen": {"j": [n]}})
        writer.save("civil", "jzdx", {"low": "中文也行", "seen": {}})
    finally:
        writer.close()
    reader = KafkaCheckpointStore(broker.bootstrap, topics.checkpoints)
    try:
        assert reader.load("police", "syrk") == {"low": "2026-01-05 00:00:00", "seen": {}}
        assert reader.load("police", "jq") == {"low": None, "seen": {"j": [4]}}
        assert reader.load("civil", "jzdx") == {"low": "中文也行", "seen": {}}
        assert reader.load("hotline", "tickets") is None
    finally:
        reader.close()


def test_a_load_reads_to_the_fetch_high_watermark_past_a_batch_of_several(
    broker: EmbeddedBroker,
) -> None:
    topics = fresh_topics(broker)
    producer = KafkaProducer(bootstrap_servers=[broker.bootstrap], linger_ms=200, acks="all")
    for n in range(20):  # lingering: one produce request, one batch of 20 records
        producer.send(
            topics.checkpoints,
            key=b"police.syrk",
            value=json.dumps({"low": n, "seen": {}}).encode(),
        )
    producer.flush()
    producer.close()
    store = KafkaCheckpointStore(broker.bootstrap, topics.checkpoints)
    try:
        assert store.load("police", "syrk") == {"low": 19, "seen": {}}
    finally:
        store.close()


def test_a_checkpoint_taken_over_reloads_what_another_owner_committed(
    broker: EmbeddedBroker,
) -> None:
    topics = fresh_topics(broker)
    first_store = KafkaCheckpointStore(broker.bootstrap, topics.checkpoints)
    second_store = KafkaCheckpointStore(broker.bootstrap, topics.checkpoints)
    try:
        first = Checkpoint(first_store, "police", "syrk")
        second = Checkpoint(second_store, "police", "syrk")
        assert second.committed is None
        seq = first.next_seq()
        first.pending(seq, {"low": "a", "seen": {}})
        first.acknowledge(seq)
        assert second.reload() == {"low": "a", "seen": {}}
        second.reset({"low": "replayed", "seen": {}})
        assert first.reload() == {"low": "replayed", "seen": {}}
        late = first.next_seq()
        first.pending(late, {"low": "b", "seen": {}})
        first.reset({"low": "again", "seen": {}})
        first.acknowledge(late)  # abandoned by the reset: moves nothing
        assert second.reload() == {"low": "again", "seen": {}}
    finally:
        first_store.close()
        second_store.close()
