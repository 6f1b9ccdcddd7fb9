"""The pulling side of a hub: connectors, their checkpoints and their health.

Runs in the hub's process (``[hub] ingest_process = false``) or in the
ingest process (``gridhub.ingest_worker``), so that pulling does not compete
with routing and merging for one interpreter. It pulls the sources that
Kafka group membership assigns to this process (``gridhub.ownership``): with
one hub that is every configured source; with several ``gridhub run``
processes sharing a configuration each source is pulled by exactly one.

Checkpoints live in the compacted ``<prefix>.checkpoints`` topic on a
deployment's broker, where every process finds what the previous owner of a
source committed; on the embedded broker, which forgets everything when the
hub stops, they live in files under ``data_dir/checkpoints`` (and are not
mirrored to the topic: no other process can reach an embedded broker, and the
topic would be empty after every restart).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from gridhub.config import GridhubSettings
from gridhub.connectors.base.checkpoint import (
    Checkpoint,
    CheckpointStore,
    FileCheckpointStore,
    Position,
)
from gridhub.connectors.base.kafka_checkpoint_store import KafkaCheckpointStore
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.source import Source, SourceHealth
from gridhub.connectors.civil_affairs.roster_source import RosterSource
from gridhub.connectors.civil_affairs.source import CivilSource
from gridhub.connectors.hotline.source import HotlineSource
from gridhub.connectors.party_building.source import PartySource
from gridhub.connectors.public_security.source import PoliceSource
from gridhub.errors import ConfigError
from gridhub.logs import get_logger
from gridhub.ownership import SourceOwnership, create_coordination_topics
from gridhub.topics import Topics

log = get_logger("ingest")

INGEST_STATUS_FILE = "status-ingest.json"

STOP_TIMEOUT_S = 60.0
"""How long letting a source go waits for its batch in flight."""

PULLED: dict[str, tuple[tuple[type[Source], tuple[str, ...]], ...]] = {
    "police": ((PoliceSource, ("syrk", "jq")),),
    "party": ((PartySource, ("members", "activities")),),
    "civil": ((CivilSource, ("jzdx",)), (RosterSource, RosterSource.entities)),
    "hotline": ((HotlineSource, ("tickets",)),),
}
"""Per source name: its connectors (a Source class each) and the entities each pulls.
Ownership, checkpoints and replays go by source name, over all its connectors."""


Connector = tuple[type[Source], tuple[str, ...]]


def connectors_of(settings: GridhubSettings, source: str) -> list[Connector]:
    """The connectors a configured source runs (an optional part only when configured)."""
    config = getattr(settings.sources, source)
    return [(kind, entities) for kind, entities in PULLED[source] if kind.configured(config)]


def replay_positions(
    settings: GridhubSettings, source: str, since: datetime
) -> dict[str, Position]:
    """Per checkpoint of ``source``, the position of a pull starting again at ``since``."""
    return {
        kind.checkpoint_of(entity): kind.position_since(since)
        for kind, entities in connectors_of(settings, source)
        for entity in entities
    }


def replay(settings: GridhubSettings, source: str, since: datetime) -> dict[str, Position | None]:
    """Move an embedded hub's checkpoint files back to ``since`` while it is stopped
    (``gridhub replay``); returns the positions they had. A running hub, or a
    deployment's broker, takes a request instead (``gridhub.replay_requests``).

    Re-pulled versions are recognised downstream (an event row is the same row; a
    resident gets the same content again), so only genuinely new data changes the
    merged result.
    """
    store = FileCheckpointStore(settings.data_dir / "checkpoints")
    before: dict[str, Position | None] = {}
    for name, position in replay_positions(settings, source, since).items():
        before[name] = store.load(source, name)
        store.save(source, name, position)
    return before


@dataclass
class PulledSource:
    """A source this process pulls now: its connectors, each in a thread of its own."""

    name: str
    connectors: list[Source]
    stop: threading.Event
    threads: list[threading.Thread]


class Ingest:
    """The configured sources this process owns, each pulled in its own threads."""

    def __init__(self, settings: GridhubSettings, bootstrap: str, topics: Topics) -> None:
        self.settings = settings
        self.checkpoints: dict[tuple[str, str], Checkpoint] = {}
        """Per (source, entity), the checkpoint its batches move (the sink's acknowledgements
        name the entity)."""
        self._kept: dict[tuple[str, str], Checkpoint] = {}
        """Every checkpoint this process has held, by its own name; kept across take-overs, so
        batch numbers keep growing and acknowledgements of abandoned batches are ignored."""
        self.stop_event = threading.Event()
        self._bootstrap = bootstrap
        self._topics = topics
        self._lock = threading.RLock()
        self._running: dict[str, PulledSource] = {}
        self._failed: dict[str, str] = {}
        # On the embedded broker a batch is safe only once stored in ClickHouse.
        self.ack_on_publish = not settings.kafka.embedded
        create_coordination_topics(bootstrap, topics)
        self.store: CheckpointStore = (
            FileCheckpointStore(settings.data_dir / "checkpoints")
            if settings.kafka.embedded
            else KafkaCheckpointStore(bootstrap, topics.checkpoints)
        )
        self.ownership = SourceOwnership(
            bootstrap,
            topics,
            settings.kafka.group_id,
            take_over=self.take_over,
            let_go=self.let_go,
            replay=self.replay_source,
        )

    @property
    def sources(self) -> list[Source]:
        """The connectors pulling now."""
        with self._lock:
            return [c for pulled in self._running.values() for c in pulled.connectors]

    def _checkpoint(self, source: str, name: str) -> Checkpoint:
        """A checkpoint of ``source`` (an entity's, or one a connector keeps for several),
        loaded afresh from the store."""
        checkpoint = self._kept.get((source, name))
        if checkpoint is None:
            checkpoint = self._kept[(source, name)] = Checkpoint(self.store, source, name)
        else:
            checkpoint.reload()
        return checkpoint

    def take_over(self, name: str) -> None:
        """Start pulling ``name`` from its committed checkpoints (group assignment)."""
        config = getattr(self.settings.sources, name, None)
        if config is None:
            log.info("source assigned here is not configured here", source=name)
            return
        with self._lock:
            if name in self._running or self.stop_event.is_set():
                return
            try:
                connectors = [
                    self._connector(kind, config, name, entities)
                    for kind, entities in connectors_of(self.settings, name)
                ]
            except Exception as exc:  # a broken source must not stop the others
                self._failed[name] = f"{type(exc).__name__}: {exc}"
                log.error("source could not start", source=name, error=self._failed[name])
                return
            self._failed.pop(name, None)
            stop = threading.Event()
            threads = [
                threading.Thread(target=c.run, args=(stop,), name=f"source-{c.label}", daemon=True)
                for c in connectors
            ]
            self._running[name] = PulledSource(name, connectors, stop, threads)
            for thread in threads:
                thread.start()

    def _connector(
        self, kind: type[Source], config: Any, name: str, entities: tuple[str, ...]
    ) -> Source:
        """One Source (a subclass taking ``config, publisher, checkpoints``) with its own
        producer and the checkpoints of ``entities``."""
        kept = {
            c: self._checkpoint(name, c) for c in dict.fromkeys(map(kind.checkpoint_of, entities))
        }
        checkpoints = {e: kept[kind.checkpoint_of(e)] for e in entities}
        self.checkpoints.update({(name, e): c for e, c in checkpoints.items()})
        publisher = EnvelopePublisher(
            self._bootstrap, self._topics, client_id=f"gridhub-{kind.component or name}"
        )
        make = cast(Callable[..., Source], kind)  # each subclass adds its config first
        return make(
            config, publisher, checkpoints, ack_on_publish=self.ack_on_publish, entities=entities
        )

    def let_go(self, name: str) -> None:
        """Stop pulling ``name`` after each connector's batch in flight (revocation)."""
        with self._lock:
            self._failed.pop(name, None)
            pulled = self._running.pop(name, None)
            if pulled is None:
                return
            pulled.stop.set()
            for thread in pulled.threads:
                thread.join(timeout=STOP_TIMEOUT_S)
            for connector in pulled.connectors:
                connector.close()
                connector.publisher.close()

    def replay_source(self, name: str, since: datetime) -> dict[str, Position | None]:
        """Stop ``name``, move its checkpoints back to ``since`` and start it again;
        returns the positions they had.

        Raises:
            ConfigError: the source is not configured in this process.
        """
        if getattr(self.settings.sources, name, None) is None:
            raise ConfigError(
                f"source {name} is not configured in [sources.{name}] of the process "
                "that owns it; give every `gridhub run` process the same configuration"
            )
        with self._lock:
            running = name in self._running
            self.let_go(name)
            before: dict[str, Position | None] = {}
            for kept, position in replay_positions(self.settings, name, since).items():
                checkpoint = self._checkpoint(name, kept)
                before[kept] = checkpoint.committed
                checkpoint.reset(position)
            if running:
                self.take_over(name)
            return before

    def start(self) -> None:
        """Join the connector group; assigned sources start pulling."""
        self.ownership.start()

    def stop(self) -> None:
        """Stop pulling and leave the group, so that other processes take over at once.
        Safe to call twice."""
        self.stop_event.set()
        self.ownership.stop()
        for name in list(self._running):
            self.let_go(name)
        if isinstance(self.store, KafkaCheckpointStore):
            self.store.close()

    def caught_up(self) -> bool:
        """Every source polled to the end and every batch acknowledged."""
        sources = self.sources
        if not sources or not all(s.health.caught_up for s in sources):
            return False
        return all(c.outstanding == 0 for c in set(self.checkpoints.values()))

    def status(self) -> dict[str, Any]:
        """Sources' health, the sources this process owns, and whether everything
        pulled is safe."""
        silent = self.settings.hub.source_silent_seconds
        health = {s.label: s.health.as_dict(silent) for s in self.sources}
        for name, reason in dict(self._failed).items():
            health[name] = SourceHealth(healthy=False, reason=reason).as_dict()
        return {
            "written_at": datetime.now(UTC).isoformat(),
            "sources": health,
            "owned": self.ownership.owned,
            "caught_up": self.caught_up(),
        }
