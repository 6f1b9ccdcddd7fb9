"""Connector positions in a compacted Kafka topic, as Kafka Connect keeps source offsets.

``<prefix>.checkpoints`` holds one message per commit: key ``source.entity``,
value the position as JSON; ``cleanup.policy=compact`` keeps the last value
per key. This is the store of a deployment's broker, which every ``gridhub
run`` process of the deployment reaches, so a process that takes a source
over resumes where the previous owner committed, wherever that ran.

A load reads the whole topic to the fetch high watermark with a consumer of
its own (``gridhub.runtime.topic_reader``), so it sees every commit the
previous owner made before it let the source go. The embedded broker keeps
nothing across a restart, so the embedded hub keeps its positions in files
(:class:`~gridhub.connectors.base.checkpoint.FileCheckpointStore`) and does
not write this topic.
"""

from __future__ import annotations

import json

from gridhub.connectors.base.checkpoint import Position
from kafka import KafkaProducer
from kafka.errors import KafkaError

from gridhub.errors import BrokerUnavailable
from gridhub.logs import get_logger
from gridhub.runtime.topic_reader import read_topic

log = get_logger("connectors.kafka_checkpoints")

SAVE_TIMEOUT_S = 30.0


def checkpoint_key(source: str, entity: str) -> str:
    """The message key of one (source, entity)'s positions."""
    return f"{source}.{entity}"


class KafkaCheckpointStore:
    """Positions in ``topic`` on the broker at ``bootstrap`` (see the module docstring)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            client_id="gridhub-checkpoints",
            acks="all",
            retries=5,
        )

    def positions(self) -> dict[str, Position]:
        """Every key's last position, read from the beginning to the high watermark.

        Raises:
            BrokerUnavailable: the broker did not serve the topic.
        """
        out: dict[str, Position] = {}
        for key, value in read_topic(self.bootstrap, self.topic, client_id="gridhub-checkpoints"):
            if key is None:
                continue
            name = key.decode("utf-8")
            if value is None:
                out.pop(name, None)  # a tombstone: the position was deleted
            else:
                out[name] = json.loads(value)
        return out

    def load(self, source: str, entity: str) -> Position | None:
        """The last committed position, or None before the first commit."""
        return self.positions().get(checkpoint_key(source, entity))

    def save(self, source: str, entity: str, position: Position) -> None:
        """Send the position and wait until every in-sync replica has it.

        Raises:
            BrokerUnavailable: the broker did not take it (the source rewinds and
                pulls again from the position before, so nothing is skipped).
        """
        value = json.dumps(position, ensure_ascii=False, separators=(",", ":"))
        try:
            future = self._producer.send(
                self.topic,
                key=checkpoint_key(source, entity).encode("utf-8"),
                value=value.encode("utf-8"),
            )
            self._producer.flush(timeout=SAVE_TIMEOUT_S)
            future.get(timeout=SAVE_TIMEOUT_S)
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"the broker did not store the checkpoint of {source}.{entity} "
                f"({type(exc).__name__}); the source pulls again from its last checkpoint"
            ) from exc

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=10)
