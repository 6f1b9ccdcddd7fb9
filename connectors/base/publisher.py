"""Publishes connector batches to Kafka with kafka-python.

One message per batch (an :class:`~gridhub.schemas.Envelope` of up to a few
hundred records): per-message overhead, not Kafka, limits a Python pipeline,
so the hot path moves batches.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gridhub.schemas import encode_dict
from kafka import KafkaProducer
from kafka.errors import KafkaError

from gridhub.errors import SourceUnavailable
from gridhub.topics import Topics

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class EnvelopePublisher:
    """Sends one envelope per batch and waits for the broker's acknowledgement."""

    def __init__(self, bootstrap: str, topics: Topics, *, client_id: str = "gridhub-connector"):
        self.topics = topics
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            client_id=client_id,
            acks="all",
            linger_ms=5,
            max_request_size=MAX_MESSAGE_BYTES,
            retries=5,
        )

    def publish(
        self, source: str, entity: str, seq: int, records: list[bytes], cursor: dict[str, Any]
    ) -> None:
        """Send one batch and block until Kafka acknowledged it.

        Raises:
            SourceUnavailable: the broker did not take the batch (the caller rewinds).
        """
        self._send(self.topics.raw(source, entity), source, entity, seq, records, cursor)

    def publish_dead_letters(
        self, source: str, entity: str, seq: int, letters: list[bytes], cursor: dict[str, Any]
    ) -> None:
        """Send DeadLetter records a connector found itself (a roster file that cannot be
        read) straight to the dead letters, numbered like its batches.

        Raises:
            SourceUnavailable: the broker did not take the batch (the caller rewinds).
        """
        self._send(self.topics.dead_letters, source, entity, seq, letters, cursor)

    def _send(
        self,
        topic: str,
        source: str,
        entity: str,
        seq: int,
        records: list[bytes],
        cursor: dict[str, Any],
    ) -> None:
        envelope = encode_dict(
            "Envelope",
            {
                "source": source,
                "entity": entity,
                "seq": seq,
                "cursor": json.dumps(cursor, ensure_ascii=False, separators=(",", ":")),
                "produced_at": datetime.now(UTC),
                "records": records,
                "partition_count": 1,
                "part": 0,
            },
        )
        try:
            future = self._producer.send(topic, value=envelope, key=entity.encode())
            self._producer.flush(timeout=30)
            future.get(timeout=30)
        except KafkaError as exc:
            raise SourceUnavailable(
                source,
                f"the broker did not accept a batch of {entity}: {type(exc).__name__}",
                kind="broker",
            ) from exc

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=10)
