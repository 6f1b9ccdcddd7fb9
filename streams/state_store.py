"""Resident states kept per partition of ``person``, so several merge processes can share
the merge.

A partition's residents live in their own RocksDB (``data_dir/state/residents/p<N>``),
opened by the process that owns the partition in the merge's consumer group
(like a Kafka Streams state store). When a rebalance moves a partition, its
old owner closes the database after the batch in hand is saved, and the new
owner's open waits for RocksDB's lock until then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from gridhub.streams.identity import partition_for
from gridhub.streams.merge_resident import Edition, ResidentState, ResidentStore

from gridhub.errors import GridhubError
from gridhub.logs import get_logger

log = get_logger("streams.state_store")

T = TypeVar("T")

OPEN_TIMEOUT_S = 30.0
"""How long to wait for another process to let go of a partition's database."""


class StateStoreBusy(GridhubError):
    """A partition's state is still held by another process."""


def open_waiting(path: Path, partition: int, opener: Callable[[Path], T]) -> T:
    """Open a partition's RocksDB, waiting while another process still holds it (a
    rebalance moved the partition here and its old owner saves its batch in hand).

    Raises:
        StateStoreBusy: still held after :data:`OPEN_TIMEOUT_S`.
    """
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    warned = False
    while True:
        try:
            return opener(path)
        except Exception as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() > deadline:
                raise StateStoreBusy(
                    f"the state of partition {partition} ({path}) is still held "
                    f"by another process after {OPEN_TIMEOUT_S:.0f} s; is a second hub "
                    "running with the same data_dir?"
                ) from exc
            if not warned:
                log.info("waiting for another merge process to release", partition=partition)
                warned = True
            time.sleep(0.1)


class Closable(Protocol):
    def close(self) -> None: ...


D = TypeVar("D", bound=Closable)


class PartitionDatabases(Generic[D]):
    """One database per partition (``root/p<N>``), opened on first use by the process that
    owns the partition, and closed when a rebalance takes it away."""

    def __init__(self, root: Path, partitions: int, opener: Callable[[Path], D]) -> None:
        self.root = root
        self.partitions = partitions
        self._opener = opener
        self._open: dict[int, D] = {}

    def _store(self, partition: int) -> D:
        store = self._open.get(partition)
        if store is None:
            store = open_waiting(self.root / f"p{partition}", partition, self._opener)
            self._open[partition] = store
        return store

    def release(self, keep: set[int]) -> list[int]:
        """Close the databases of partitions this process no longer owns; returns them."""
        released = sorted(p for p in self._open if p not in keep)
        for partition in released:
            self._open.pop(partition).close()
        return released

    @property
    def open_partitions(self) -> set[int]:
        """Partitions whose database this process holds."""
        return set(self._open)

    def close(self) -> None:
        """Close every database."""
        self.release(set())


class PartitionedResidentStore(PartitionDatabases[ResidentStore]):
    """The ResidentStore interface over one RocksDB per partition of ``person``."""

    def __init__(self, root: Path, partitions: int) -> None:
        super().__init__(root, partitions, ResidentStore)

    def load(self, keys: Iterable[str]) -> dict[str, ResidentState]:
        """States of these residents (new, empty states for unknown keys)."""
        by_partition: dict[int, list[str]] = {}
        for key in keys:
            by_partition.setdefault(partition_for(key, self.partitions), []).append(key)
        out: dict[str, ResidentState] = {}
        for partition, of_partition in by_partition.items():
            out.update(self._store(partition).load(of_partition))
        return out

    def save(self, states: dict[str, ResidentState]) -> None:
        """Write changed states, one atomic batch per partition."""
        by_partition: dict[int, dict[str, ResidentState]] = {}
        for key, state in states.items():
            by_partition.setdefault(partition_for(key, self.partitions), {})[key] = state
        for partition, of_partition in by_partition.items():
            self._store(partition).save(of_partition)

    def partition_of(self, key: str) -> int:
        """The partition of ``person`` that owns this resident."""
        return partition_for(key, self.partitions)

    def listed(self, partition: int, allowance: str, month: str) -> list[str]:
        """Residents of ``partition`` ever listed in that roster month."""
        return self._store(partition).listed(allowance, month)

    def load_editions(self, partition: int) -> dict[str, Edition]:
        """The newest roster editions ``partition`` has applied."""
        return self._store(partition).load_editions()

    def save_editions(self, partition: int, editions: dict[str, Edition]) -> None:
        """Keep ``partition``'s newest roster editions."""
        self._store(partition).save_editions(editions)

    def resident_keys(self, partition: int) -> list[str]:
        """Every resident of ``partition``."""
        return self._store(partition).resident_keys()

    def ending_by(self, partition: int, day: str) -> list[tuple[str, str]]:
        """(index key, resident) of ``partition``'s assistance ending on ``day`` or before."""
        return self._store(partition).ending_by(day)

    def forget(self, partition: int, keys: Iterable[str]) -> None:
        """Remove applied index entries of ``partition``."""
        self._store(partition).forget(keys)

    def placed_with(self, partition: int) -> str | None:
        """Fingerprint of the reference data ``partition``'s residents were placed with."""
        return self._store(partition).placed_with()

    def save_placed_with(self, partition: int, fingerprint: str) -> None:
        """Record the reference data ``partition``'s residents are now placed with."""
        self._store(partition).save_placed_with(fingerprint)
