"""Where a connector resumes after a stop or a crash.

A connector's *position* (Kafka Connect's "source offset") is a small JSON
document it alone understands: for the police tables ``{"low": ..., "seen":
{...}}``. Each published batch gets a sequence number and the position
reached after it. A position becomes the resume point only when every batch
up to it is safe:

1. the connector calls :meth:`Checkpoint.pending` with the batch's sequence
   number and position, *before* sending the batch;
2. the batch is sent and the producer flushed (Kafka acknowledged it);
3. the batch is acknowledged with :meth:`Checkpoint.acknowledge`: right after
   the flush when the broker is durable, or, on the embedded broker, which
   keeps data in memory only, by the ClickHouse sink once every part of the
   batch is in the store;
4. the highest position whose batches up to it are all acknowledged is written
   to the checkpoint store: on the embedded broker a file (temporary file,
   fsync, rename; :class:`FileCheckpointStore`), on a deployment's broker the
   compacted ``<prefix>.checkpoints`` topic (``kafka_checkpoint_store.py``).

A crash anywhere in 1-4 resumes from the last written position: batches after
it are pulled again, which the merge and the store absorb (replays change
nothing), and no batch is skipped. A process that takes a source over from
another loads the position afresh (:meth:`Checkpoint.reload`), because the
previous owner may have committed further than this process last saw.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from gridhub.logs import get_logger

log = get_logger("connectors.checkpoint")

Position = dict[str, Any]


class CheckpointStore(Protocol):
    """Where committed positions live, one per (source, entity)."""

    def load(self, source: str, entity: str) -> Position | None:
        """The last saved position, or None before the first commit."""
        ...

    def save(self, source: str, entity: str, position: Position) -> None:
        """Make ``position`` the resume point; returns once it is durable."""
        ...


class FileCheckpointStore:
    """Positions as one JSON file per (source, entity) in ``data_dir/checkpoints``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _file(self, source: str, entity: str) -> Path:
        return self.directory / f"{source}.{entity}.json"

    def load(self, source: str, entity: str) -> Position | None:
        """The saved position, or None before the first commit."""
        path = self._file(source, entity)
        if not path.exists():
            return None
        data: Position = json.loads(path.read_text("utf-8"))
        return data

    def save(self, source: str, entity: str, position: Position) -> None:
        """Write the position so that a crash leaves either the old or the new one."""
        path = self._file(source, entity)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(position, handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


class Checkpoint:
    """The pending batches of one (source, entity) and its committed position."""

    def __init__(self, store: CheckpointStore, source: str, entity: str) -> None:
        self.store = store
        self.source = source
        self.entity = entity
        self._lock = threading.Lock()
        self._pending: dict[int, Position] = {}
        self._acked: set[int] = set()
        self._committed_seq = -1
        self.committed: Position | None = store.load(source, entity)
        self._next_seq = 0

    def next_seq(self) -> int:
        """A fresh batch number (numbers restart with the process; the broker does too)."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def pending(self, seq: int, position: Position) -> None:
        """Step 1: remember the position a batch reaches, before it is sent."""
        with self._lock:
            self._pending[seq] = position

    def rewind(self) -> Position | None:
        """After a failed send: abandon every batch in flight and resume from the
        committed position, which covers them all (late acknowledgements of the
        abandoned batches are ignored)."""
        with self._lock:
            self._abandon_in_flight()
            return self.committed

    def reload(self) -> Position | None:
        """On taking the source over: abandon what is in flight and read the committed
        position from the store again (another process may have moved it since)."""
        with self._lock:
            self._abandon_in_flight()
            self.committed = self.store.load(self.source, self.entity)
            return self.committed

    def reset(self, position: Position) -> None:
        """``gridhub replay``: make ``position`` the committed one. Batches in flight are
        abandoned in the same step, so none of their late acknowledgements can write a
        position past the replay's."""
        with self._lock:
            self._abandon_in_flight()
            self.store.save(self.source, self.entity, position)
            self.committed = position

    def _abandon_in_flight(self) -> None:
        """Forget pending batches; batch numbers keep growing, so their acks are ignored."""
        self._pending.clear()
        self._acked.clear()
        self._committed_seq = self._next_seq - 1

    def acknowledge(self, seq: int) -> None:
        """Step 3: the batch is safe; step 4 runs when it closes a contiguous prefix."""
        with self._lock:
            if seq <= self._committed_seq or seq not in self._pending:
                return  # settled, abandoned by a rewind, or not this checkpoint's batch
            self._acked.add(seq)
            position = None
            while self._committed_seq + 1 in self._acked:
                self._committed_seq += 1
                self._acked.discard(self._committed_seq)
                position = self._pending.pop(self._committed_seq, position)
            if position is not None:
                self.store.save(self.source, self.entity, position)
                self.committed = position

    def settled(self, seq: int) -> bool:
        """True when this batch is already covered by the committed position."""
        with self._lock:
            return seq <= self._committed_seq

    @property
    def outstanding(self) -> int:
        """Batches sent but not yet acknowledged."""
        with self._lock:
            return len(self._pending)


FOREIGN_SEQ_START = 2**53
"""Batch numbers from here on are batches no connector pulled (HTTP ingest): their
acknowledgements move no checkpoint. A connector numbers from 0 in each process."""


class SinkAcknowledgements:
    """Step 3 on the embedded broker: a batch is acknowledged once every part is stored.

    The normaliser splits a batch into ``parts`` messages (one per partition
    it touches, plus one of dead letters); the sink reports each part after its
    insert. Parts reported twice (a replayed message) count once.
    """

    def __init__(self, checkpoints: dict[tuple[str, str], Checkpoint]) -> None:
        self.checkpoints = checkpoints
        self._lock = threading.Lock()
        self._done: dict[tuple[str, str, int], set[int]] = {}

    def part_done(self, source: str, entity: str, seq: int, part: int, parts: int) -> None:
        """Record one stored part; acknowledge the batch when all its parts are stored."""
        checkpoint = self.checkpoints.get((source, entity))
        if checkpoint is None or checkpoint.settled(seq) or seq >= FOREIGN_SEQ_START:
            return  # unknown, a replayed part of a batch already committed, or not a pull
        key = (source, entity, seq)
        with self._lock:
            done = self._done.setdefault(key, set())
            done.add(part)
            complete = len(done) >= parts
            if complete:
                del self._done[key]
        if complete:
            checkpoint.acknowledge(seq)
