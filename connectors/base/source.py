"""The polling loop every pulled source shares.

A source only knows how to make one pass over its system (:meth:`Source.poll`);
this loop adds what every integration needs: back-off with jitter after a
failure (honouring ``retry_after``), a health state with the reason, and
counters for ``gridhub status``. A failing source never stops another: each
runs in its own thread. A stop request takes effect after the batch in flight
(:meth:`Source.emit`), not at the end of a pass that may hold a whole backlog:
a source that moves to another process stops within one batch.
"""

from __future__ import annotations

import copy
import random
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridhub.connectors.base.checkpoint import Checkpoint, Position
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.table_window import TableWindow

from gridhub.errors import PullStopped, SourceUnavailable
from gridhub.logs import get_logger


@dataclass
class SourceHealth:
    """What ``gridhub status`` and ``/health`` say about one source."""

    healthy: bool = True
    reason: str = ""
    records: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    """Failed polls by :data:`~gridhub.errors.ErrorKind`."""
    polls: int = 0
    last_success: datetime | None = None
    first_poll_at: datetime | None = None
    caught_up: bool = False
    positions: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, silent_after: float | None = None) -> dict[str, Any]:
        """JSON-friendly form; with ``silent_after``, a source without a successful pull
        for that many seconds is unhealthy, saying since when."""
        healthy, reason = self.healthy, self.reason
        since = self.last_success or self.first_poll_at
        if healthy and silent_after is not None and since is not None:
            silent = (datetime.now(UTC) - since).total_seconds()
            if silent > silent_after:
                healthy = False
                reason = (
                    f"no successful pull for {silent:.0f} s (since {since.isoformat()}); "
                    f"[hub] source_silent_seconds = {silent_after:.0f}"
                )
        return {
            "healthy": healthy,
            "reason": reason,
            "records": self.records,
            "errors": self.errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "polls": self.polls,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "first_poll_at": self.first_poll_at.isoformat() if self.first_poll_at else None,
            "caught_up": self.caught_up,
            "positions": self.positions,
        }


class Source(ABC):
    """One source system pulled in its own thread."""

    name: str
    """The source system, as records and envelopes name it."""
    entities: tuple[str, ...]
    component: str = ""
    """How status and ``/health`` name this connector when a source has several (else
    ``name``)."""

    @property
    def label(self) -> str:
        """This connector's name in status and ``/health``."""
        return self.component or self.name

    @classmethod
    def configured(cls, config: Any) -> bool:
        """Whether this connector runs under its source's configuration (a source may have
        optional parts, such as the civil-affairs roster folder)."""
        return True

    @classmethod
    def checkpoint_of(cls, entity: str) -> str:
        """The checkpoint an entity's batches move: its own, unless the connector keeps one
        position for several entities."""
        return entity

    def __init__(
        self,
        publisher: EnvelopePublisher,
        checkpoints: dict[str, Checkpoint],
        *,
        ack_on_publish: bool,
        poll_seconds: float,
        max_backoff_seconds: float = 60.0,
    ) -> None:
        self.publisher = publisher
        self.checkpoints = checkpoints
        self.ack_on_publish = ack_on_publish
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.health = SourceHealth()
        self.log = get_logger(f"connectors.{self.name}")
        self._stop: threading.Event | None = None

    @abstractmethod
    def poll(self) -> int:
        """One pass over the system; returns how many records were published."""

    @abstractmethod
    def rewind(self) -> None:
        """Forget the in-memory position and resume from the committed checkpoint."""

    @classmethod
    def position_since(cls, since: datetime) -> Position:
        """The position of a pull that starts again at ``since`` (``gridhub replay``): its
        window's floor, with nothing seen yet. Stamps are kept as ISO 8601 in UTC."""
        return {"low": since.astimezone(UTC).isoformat(timespec="microseconds"), "seen": {}}

    def committed_windows(
        self, lookback_seconds: float, time_format: str | None
    ) -> dict[str, TableWindow]:
        """Every entity's window as its checkpoint last committed it (what a rewind resumes
        from; batches in flight are abandoned)."""
        return {
            entity: TableWindow(
                copy.deepcopy(self.checkpoints[entity].rewind()), lookback_seconds, time_format
            )
            for entity in self.entities
        }

    def close(self) -> None:  # noqa: B027 (a hook: most sources hold nothing to release)
        """Release the source's connections once its loop has stopped."""

    def emit(self, entity: str, records: list[bytes], position: Position) -> None:
        """Publish one batch and register its position with the checkpoint."""
        checkpoint = self.checkpoints[entity]
        seq = checkpoint.next_seq()
        checkpoint.pending(seq, position)
        self.publisher.publish(self.name, entity, seq, records, position_summary(position))
        if self.ack_on_publish:
            checkpoint.acknowledge(seq)
        self.health.records += len(records)
        if self._stop is not None and self._stop.is_set():
            raise PullStopped(f"source {self.name} stopped after a batch of {entity}")

    def emit_dead_letters(self, entity: str, letters: list[bytes], position: Position) -> None:
        """Publish DeadLetter records this connector found itself, numbered like a batch so
        its position moves only once they are safe."""
        checkpoint = self.checkpoints[entity]
        seq = checkpoint.next_seq()
        checkpoint.pending(seq, position)
        self.publisher.publish_dead_letters(
            self.name, entity, seq, letters, position_summary(position)
        )
        if self.ack_on_publish:
            checkpoint.acknowledge(seq)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (checked after every batch); never raises."""
        self._stop = stop
        failures = 0
        while not stop.is_set():
            if self.health.first_poll_at is None:
                self.health.first_poll_at = datetime.now(UTC)
            try:
                published = self.poll()
            except PullStopped:
                return
            except Exception as exc:
                failures += 1
                self.health.errors += 1
                kind = exc.kind if isinstance(exc, SourceUnavailable) else "other"
                self.health.errors_by_kind[kind] = self.health.errors_by_kind.get(kind, 0) + 1
                self.health.healthy = False
                self.health.reason = (
                    str(exc)
                    if isinstance(exc, SourceUnavailable)
                    else (f"{type(exc).__name__}: {exc}")
                )
                self.log.warning("poll failed", source=self.label, reason=self.health.reason)
                try:
                    self.rewind()
                except Exception as rewind_exc:  # a broken checkpoint must not kill the loop
                    self.log.error("rewind failed", source=self.label, error=str(rewind_exc))
                retry_after = getattr(exc, "retry_after", None)
                stop.wait(retry_after or backoff(failures, self.max_backoff_seconds))
                continue
            failures = 0
            self.health.healthy = True
            self.health.reason = ""
            self.health.polls += 1
            self.health.last_success = datetime.now(UTC)
            self.health.caught_up = published == 0
            if published == 0:
                stop.wait(self.poll_seconds)


def backoff(failures: int, cap: float, base: float = 0.5) -> float:
    """Exponential back-off with full jitter, capped."""
    return float(random.uniform(0, min(cap, base * 2 ** min(failures, 16))))


def position_summary(position: Position) -> dict[str, Any]:
    """The readable part of a position, for envelopes and status (no large sets)."""
    return {key: value for key, value in position.items() if not isinstance(value, dict | list)}
