"""Read a small topic from its beginning to its end, as the broker sees it now.

"The end" is the fetch response's high watermark, never ListOffsets: the
embedded broker (Tansu) answers ListOffsets(latest) with the last *batch's*
base offset + 1, short of the log end whenever a batch held several records.
Each read uses a consumer of its own, so the first high watermark it sees
comes from a fetch sent after the read began: whatever another process had
written before that is included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from gridhub.errors import BrokerUnavailable


def read_topic(
    bootstrap: str, topic: str, *, timeout_s: float = 30.0, client_id: str = "gridhub-reader"
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """Every message's key and value, partition by partition, up to the high watermark.

    Raises:
        BrokerUnavailable: the broker did not serve the topic within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"the broker at {bootstrap} did not answer ({type(exc).__name__}); "
            f"topic {topic} could not be read"
        ) from exc
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})
        ]
        for tp in partitions:  # one at a time: a poll returns only this partition's messages
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            yield from _read_partition(consumer, tp, topic, deadline)
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"topic {topic} could not be read from {bootstrap}: {type(exc).__name__}"
        ) from exc
    finally:
        consumer.close()


def _read_partition(
    consumer: Any, tp: TopicPartition, topic: str, deadline: float
) -> Iterator[tuple[bytes | None, bytes | None]]:
    """One partition's messages until the position reaches the fetched high watermark."""
    while True:
        fetched = consumer.poll(timeout_ms=200)
        for message in fetched.get(tp, []):
            yield message.key, message.value
        high = consumer.highwater(tp)
        if high is not None and consumer.position(tp) >= high:
            return
        if time.monotonic() > deadline:
            raise BrokerUnavailable(
                f"topic {topic} partition {tp.partition} was not read to its end in time; "
                "check that the broker is up"
            )
