"""The pulling side of a hub: connectors, their checkpoints and their health.

Runs in the hub's process (``[hub] ingest_process = false``) or in the
ingest process (``gridhub.ingest_worker``), so that pulling does not compete
with routing and merging for one interpreter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from gridhub.config import GridhubSettings
from gridhub.connectors.base.checkpoint import Checkpoint, FileCheckpointStore, Position
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.source import Source
from gridhub.connectors.civil_affairs.source import CivilSource
from gridhub.connectors.hotline.source import HotlineSource
from gridhub.connectors.party_building.source import PartySource
from gridhub.connectors.public_security.source import PoliceSource
from gridhub.logs import get_logger
from gridhub.topics import Topics

log = get_logger("ingest")

INGEST_STATUS_FILE = "status-ingest.json"

PULLED: dict[str, tuple[type[Source], tuple[str, ...]]] = {
    "police": (PoliceSource, ("syrk", "jq")),
    # party activities count for grid.area, which the merge does not build yet
    "party": (PartySource, ("members",)),
    "civil": (CivilSource, ("jzdx",)),
    "hotline": (HotlineSource, ("tickets",)),
}
"""Per source: its connector and the entities pulled."""


def replay(settings: GridhubSettings, source: str, since: datetime) -> dict[str, Position | None]:
    """Move a source's checkpoints back to ``since`` (``gridhub replay``); returns the
    positions they had. The hub must not run: its connectors hold the positions.

    Re-pulled versions are recognised downstream (an event row is the same row; a
    resident gets the same content again), so only genuinely new data changes the
    merged result.
    """
    kind, entities = PULLED[source]
    store = FileCheckpointStore(settings.data_dir / "checkpoints")
    before: dict[str, Position | None] = {}
    for entity in entities:
        before[entity] = store.load(source, entity)
        store.save(source, entity, kind.position_since(since))
    return before


class Ingest:
    """Every configured source, each pulled in its own thread."""

    def __init__(self, settings: GridhubSettings, bootstrap: str, topics: Topics) -> None:
        self.settings = settings
        self.sources: list[Source] = []
        self.checkpoints: dict[tuple[str, str], Checkpoint] = {}
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self._store = FileCheckpointStore(settings.data_dir / "checkpoints")
        self._bootstrap = bootstrap
        self._topics = topics
        # On the embedded broker a batch is safe only once stored in ClickHouse.
        ack_on_publish = not settings.kafka.embedded
        sources = settings.sources
        for name in sources.configured():
            kind, entities = PULLED[name]
            self._add(kind, getattr(sources, name), entities, ack_on_publish)
        if sources.civil is not None and sources.civil.roster_dir is not None:
            log.warning(
                "sources.civil.roster_dir is set but the roster connector is not built "
                "yet; rosters are not read",
                roster_dir=str(sources.civil.roster_dir),
            )

    def _add(
        self,
        kind: type[Source],
        config: Any,
        entities: tuple[str, ...],
        ack_on_publish: bool,
    ) -> None:
        """One source (a Source subclass taking ``config, publisher, checkpoints``) with its
        own producer and the checkpoints of ``entities``."""
        name = kind.name
        checkpoints = {e: Checkpoint(self._store, name, e) for e in entities}
        self.checkpoints.update({(name, e): c for e, c in checkpoints.items()})
        publisher = EnvelopePublisher(self._bootstrap, self._topics, client_id=f"gridhub-{name}")
        make = cast(Callable[..., Source], kind)  # each subclass adds its config first
        source = make(
            config, publisher, checkpoints, ack_on_publish=ack_on_publish, entities=entities
        )
        self.sources.append(source)

    def start(self) -> None:
        """One thread per source; a failing source never stops another."""
        for source in self.sources:
            thread = threading.Thread(
                target=source.run,
                args=(self.stop_event,),
                name=f"source-{source.name}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        """Stop pulling, wait for the threads, close the producers. Safe to call twice."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads.clear()
        for source in self.sources:
            source.close()
            source.publisher.close()
        self.sources.clear()

    def caught_up(self) -> bool:
        """Every source polled to the end and every batch acknowledged."""
        if not self.sources or not all(s.health.caught_up for s in self.sources):
            return False
        return all(c.outstanding == 0 for c in self.checkpoints.values())

    def status(self) -> dict[str, Any]:
        """Sources' health and whether everything pulled is safe."""
        return {
            "written_at": datetime.now(UTC).isoformat(),
            "sources": {s.name: s.health.as_dict() for s in self.sources},
            "caught_up": self.caught_up(),
        }
