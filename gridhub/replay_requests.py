"""``gridhub replay`` while the hub runs: a request to the process that owns the source.

The request is one message on the source's own partition of
``<prefix>.connectors``, the partition whose assignment makes a process the
source's owner (``gridhub.ownership``). So it reaches exactly the process that
pulls the source, whichever that is, with no address to look up, and a
request sent while ownership moves is read by the next owner (offsets are
committed only once a request is applied). The owner stops the source after
its batch in flight, moves its checkpoints back to ``since``, starts it again,
and writes a :class:`ReplayResult` on ``<prefix>.replays``, which the command
reads to the high watermark until its answer is there.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from kafka import KafkaProducer
from kafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict

from gridhub.errors import BrokerUnavailable, ReplayNotApplied
from gridhub.runtime.topic_reader import read_topic
from gridhub.topics import PULLED_SOURCES, Topics


class ReplayRequest(BaseModel):
    """Pull ``source`` again from ``since``."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str
    since: datetime
    requested_at: datetime


class ReplayResult(BaseModel):
    """What the owner of the source did with a request."""

    model_config = ConfigDict(frozen=True)

    id: str
    source: str
    applied: bool
    message: str
    """Why not, when not applied; else empty."""
    before: dict[str, str | None] = {}
    """Per entity, the ``low`` of the position the replay replaced."""
    owner: str = ""
    """The process that answered (``host:pid``)."""


def send_request(bootstrap: str, topics: Topics, source: str, since: datetime) -> ReplayRequest:
    """Write a request on the source's partition of ``<prefix>.connectors``.

    Raises:
        ReplayNotApplied: the broker did not take the request.
    """
    request = ReplayRequest(
        id=uuid.uuid4().hex, source=source, since=since, requested_at=datetime.now(UTC)
    )
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","), client_id="gridhub-replay", acks="all"
    )
    try:
        future = producer.send(
            topics.connectors,
            key=source.encode("utf-8"),
            value=request.model_dump_json().encode("utf-8"),
            partition=PULLED_SOURCES.index(source),
        )
        producer.flush(timeout=30)
        future.get(timeout=30)
    except KafkaError as exc:
        raise ReplayNotApplied(
            f"the broker at {bootstrap} did not take the replay request "
            f"({type(exc).__name__}); check that the hub's broker is up and try again"
        ) from exc
    finally:
        producer.close(timeout=10)
    return request


def wait_for_result(
    bootstrap: str, topics: Topics, request: ReplayRequest, timeout_s: float
) -> ReplayResult | None:
    """The owner's answer to ``request``, or None when none came within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for _, value in read_topic(bootstrap, topics.replays, client_id="gridhub-replay"):
                if value is None:
                    continue
                result = ReplayResult.model_validate_json(value)
                if result.id == request.id:
                    return result
        except BrokerUnavailable:
            pass  # the topic is not there yet or the broker is busy: ask again
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)
