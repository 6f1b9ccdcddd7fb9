"""Which process pulls which source: Kafka group membership over ``<prefix>.connectors``.

Every ingest process of a deployment joins consumer group
``<group_id>-connectors`` on ``<prefix>.connectors``, a topic with one
partition per source in the fixed order of
:data:`~gridhub.topics.PULLED_SOURCES`. The group coordinator gives each
partition to exactly one member, and that member pulls the source:

1. on revocation, the process stops the sources of its partitions (each after
   the batch in flight) before the rebalance goes on, so their last
   checkpoints are committed before anyone is assigned them (the group
   protocol runs every member's revocation before any member's assignment);
2. on assignment, it loads the sources' checkpoints afresh and starts them;
3. a member that dies (``kill -9``) misses its heartbeats and the coordinator
   hands its partitions to the others after the session timeout; they resume
   from the last committed checkpoint, so nothing is skipped.

The group uses the eager protocol (aiokafka's), so a rebalance stops every
source of a member and starts the ones it is then assigned, even those that
stay: a restart costs one reload of the checkpoints. Rebalance callbacks await
the stopping and starting in a worker thread, so heartbeats go on meanwhile.

Replay requests (``gridhub.replay_requests``) are messages on the same
partitions: the member that owns a source is the one that reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from gridhub.connectors.base.checkpoint import Position
from gridhub.logs import get_logger
from gridhub.replay_requests import ReplayRequest, ReplayResult
from gridhub.topics import PULLED_SOURCES, Topics

log = get_logger("ownership")

SESSION_TIMEOUT_MS = 6_000
"""A killed owner's sources move after this long. Tansu answers JoinGroup after half the
session timeout, so a longer one slows every rebalance."""
REJOIN_BACKOFF_S = 2.0


def create_coordination_topics(bootstrap: str, topics: Topics) -> None:
    """Create ``connectors`` (a partition per source), ``checkpoints`` (compacted) and
    ``replays`` when missing; several processes may race to do it."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="gridhub-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(topics.connectors, len(PULLED_SOURCES), 1),
            NewTopic(topics.checkpoints, 1, 1, topic_configs={"cleanup.policy": "compact"}),
            NewTopic(topics.replays, 1, 1),
        ]
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()


def sources_of(partitions: Iterable[TopicPartition]) -> list[str]:
    """The sources that partitions of ``<prefix>.connectors`` stand for, in order."""
    return [
        PULLED_SOURCES[tp.partition]
        for tp in sorted(partitions)
        if tp.partition < len(PULLED_SOURCES)
    ]


class SourceOwnership:
    """This process's membership in ``<group_id>-connectors``, polled in a thread.

    ``take_over(source)`` and ``let_go(source)`` start and stop pulling a source
    (``let_go`` returns once its last checkpoint is committed); ``replay(source,
    since)`` applies a replay request and returns the positions it replaced.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Topics,
        group_id: str,
        *,
        take_over: Callable[[str], None],
        let_go: Callable[[str], None],
        replay: Callable[[str, datetime], dict[str, Position | None]],
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.group_id = f"{group_id}-connectors"
        self._take_over = take_over
        self._let_go = let_go
        self._replay = replay
        self._owned: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.identity = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def owned(self) -> list[str]:
        """The sources this process owns now, in the fixed order."""
        return [name for name in PULLED_SOURCES if name in self._owned]

    def start(self) -> None:
        """Join the group in a thread of its own."""
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main()), name="source-ownership", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Let every source go and leave the group, so the others take over at once."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- in the ownership thread -------------------------------------------------------

    def _set_owned(self, names: Iterable[str], owned: bool) -> None:
        """Start or stop sources (in a worker thread: blocking here would stop heartbeats)."""
        for name in names:
            if owned and name not in self._owned:
                log.info("taking over source", source=name, owner=self.identity)
                self._owned.add(name)
                self._take_over(name)
            elif not owned and name in self._owned:
                self._let_go(name)
                self._owned.discard(name)
                log.info("let go of source", source=name, owner=self.identity)

    async def _main(self) -> None:
        lock = asyncio.Lock()
        while not self._stopping.is_set():
            try:
                await self._member(lock)
            except Exception as exc:  # the broker went away: drop everything, join again
                log.warning(
                    "connector group membership lost; joining again",
                    group=self.group_id,
                    error=f"{type(exc).__name__}: {exc}",
                )
                async with lock:
                    await asyncio.to_thread(self._set_owned, list(self._owned), False)
                await asyncio.sleep(REJOIN_BACKOFF_S)

    async def _member(self, lock: asyncio.Lock) -> None:
        """One membership: poll for replay requests until stopped."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","),
            group_id=self.group_id,
            client_id=f"gridhub-connectors-{self.identity}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1_000,
            rebalance_timeout_ms=120_000,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap.split(","),
            client_id=f"gridhub-replays-{self.identity}",
            acks="all",
        )
        consumer.subscribe([self.topics.connectors], listener=_Listener(self, lock))
        await consumer.start()
        await producer.start()
        try:
            while not self._stopping.is_set():
                fetched = await consumer.getmany(timeout_ms=500)
                for tp, messages in fetched.items():
                    for message in messages:
                        async with lock:
                            if PULLED_SOURCES[tp.partition] not in self._owned:
                                break  # revoked meanwhile: the new owner reads it
                            result = await self._answer(message)
                            await producer.send_and_wait(
                                self.topics.replays,
                                key=result.id.encode("utf-8"),
                                value=result.model_dump_json().encode("utf-8"),
                            )
                        # outside the lock: a commit may wait for a rebalance that waits for it
                        try:
                            await consumer.commit({tp: message.offset + 1})
                        except Exception as exc:  # the next owner applies it again: harmless
                            log.warning("replay request not committed", error=str(exc))
        finally:
            async with lock:
                await asyncio.to_thread(self._set_owned, list(self._owned), False)
            await consumer.stop()
            await producer.stop()

    async def _answer(self, message: ConsumerRecord[bytes, bytes]) -> ReplayResult:
        """Apply one replay request (the lock is held)."""
        try:
            request = ReplayRequest.model_validate_json(message.value or b"")
        except ValueError as exc:
            log.warning("unreadable replay request skipped", offset=message.offset, error=str(exc))
            return ReplayResult(id="", source="", applied=False, message="unreadable request")
        try:
            before = await asyncio.to_thread(self._replay, request.source, request.since)
        except Exception as exc:
            log.error("replay failed", source=request.source, error=str(exc))
            return ReplayResult(
                id=request.id,
                source=request.source,
                applied=False,
                message=str(exc),
                owner=self.identity,
            )
        log.info("replay applied", source=request.source, since=request.since.isoformat())
        return ReplayResult(
            id=request.id,
            source=request.source,
            applied=True,
            message="",
            before={entity: _low(position) for entity, position in before.items()},
            owner=self.identity,
        )


def _low(position: Position | None) -> str | None:
    """A position's ``low`` as text, for the replay's answer."""
    low = (position or {}).get("low")
    return None if low is None else str(low)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Stops and starts sources as partitions of ``connectors`` move."""

    def __init__(self, ownership: SourceOwnership, lock: asyncio.Lock) -> None:
        self.ownership = ownership
        self.lock = lock

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            await asyncio.to_thread(self.ownership._set_owned, sources_of(revoked), False)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.lock:
            await asyncio.to_thread(self.ownership._set_owned, sources_of(assigned), True)
