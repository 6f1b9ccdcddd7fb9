"""Checkpoints: a position becomes the resume point only once every batch up to it is safe."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from gridhub.connectors.base.checkpoint import (
    Checkpoint,
    FileCheckpointStore,
    Position,
    SinkAcknowledgements,
)


def position(n: int) -> Position:
    return {"low": f"2025-06-01 09:00:{n:02d}", "seen": {f"K{n}": ["2025-06-01 09:00:00", "ab"]}}


@pytest.fixture
def store(tmp_path: Path) -> FileCheckpointStore:
    return FileCheckpointStore(tmp_path / "checkpoints")


def saved(store: FileCheckpointStore) -> Position | None:
    return store.load("police", "syrk")


def send(checkpoint: Checkpoint, count: int) -> list[int]:
    """Steps 1-2 for ``count`` batches: numbers them and registers position(seq)."""
    seqs = [checkpoint.next_seq() for _ in range(count)]
    for seq in seqs:
        checkpoint.pending(seq, position(seq))
    return seqs


# --- FileCheckpointStore ---------------------------------------------------------------


def test_store_round_trips_a_position_per_source_and_entity(store: FileCheckpointStore) -> None:
    assert store.load("police", "syrk") is None
    value = {"low": "2025-06-01 09:00:00", "seen": {"3207230000000001": ["x", "数字"]}}
    store.save("police", "syrk", value)
    store.save("police", "jq", {"low": None, "seen": {}})
    assert store.load("police", "syrk") == value
    assert store.load("police", "jq") == {"low": None, "seen": {}}
    assert sorted(p.name for p in store.directory.iterdir()) == [
        "police.jq.json",
        "police.syrk.json",
    ]
    assert "数字" in (store.directory / "police.syrk.json").read_text("utf-8")


def test_store_replaces_the_file_atomically(store: FileCheckpointStore) -> None:
    store.save("police", "syrk", position(1))
    path = store.directory / "police.syrk.json"
    with path.open("rb") as old:  # a reader holding the old file keeps reading the old bytes
        store.save("police", "syrk", position(2))
        assert json.loads(old.read()) == position(1)
    assert saved(store) == position(2)
    assert not path.with_suffix(".tmp").exists()


def test_a_crash_while_saving_leaves_the_previous_position(
    store: FileCheckpointStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save("police", "syrk", position(1))

    def power_cut(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError):
        store.save("police", "syrk", position(2))
    monkeypatch.undo()
    assert saved(store) == position(1)
    # a restart ignores the half-written temporary file and the next save replaces it
    assert FileCheckpointStore(store.directory).load("police", "syrk") == position(1)
    store.save("police", "syrk", position(3))
    assert saved(store) == position(3)
    assert not (store.directory / "police.syrk.tmp").exists()


# --- Checkpoint ------------------------------------------------------------------------


def test_sequence_numbers_start_at_zero_and_increase(store: FileCheckpointStore) -> None:
    checkpoint = Checkpoint(store, "police", "syrk")
    assert [checkpoint.next_seq() for _ in range(4)] == [0, 1, 2, 3]
    assert checkpoint.committed is None


def test_nothing_is_written_before_an_acknowledgement(store: FileCheckpointStore) -> None:
    checkpoint = Checkpoint(store, "police", "syrk")
    send(checkpoint, 3)
    assert checkpoint.outstanding == 3
    assert saved(store) is None
    assert checkpoint.committed is None


def test_in_order_acknowledgements_commit_each_position(store: FileCheckpointStore) -> None:
    checkpoint = Checkpoint(store, "police", "syrk")
    for seq in send(checkpoint, 3):
        checkpoint.acknowledge(seq)
        assert saved(store) == position(seq)
        assert checkpoint.committed == position(seq)
    assert checkpoint.outstanding == 0


def test_out_of_order_acknowledgements_wait_for_a_contiguous_prefix(
    store: FileCheckpointStore,
) -> None:
    checkpoint = Checkpoint(store, "police", "syrk")
    send(checkpoint, 5)
    checkpoint.acknowledge(3)
    checkpoint.acknowledge(1)
    assert saved(store) is None  # batch 0 may still be lost: resuming after 3 would skip it
    checkpoint.acknowledge(0)
    assert saved(store) == position(1)  # 0 and 1 are safe, 2 is not
    assert checkpoint.outstanding == 3
    checkpoint.acknowledge(2)
    assert saved(store) == position(3)  # closing the gap commits through the early ack of 3
    checkpoint.acknowledge(4)
    assert saved(store) == position(4)
    assert checkpoint.outstanding == 0


def test_a_duplicate_acknowledgement_changes_nothing(store: FileCheckpointStore) -> None:
    checkpoint = Checkpoint(store, "police", "syrk")
    send(checkpoint, 2)
    checkpoint.acknowledge(0)
    checkpoint.acknowledge(1)
    path = store.directory / "police.syrk.json"
    path.unlink()  # any rewrite would bring the file back
    checkpoint.acknowledge(0)
    checkpoint.acknowledge(1)
    assert not path.exists()
    assert checkpoint.committed == position(1)


def test_a_restart_resumes_from_the_committed_position(store: FileCheckpointStore) -> None:
    first = Checkpoint(store, "police", "syrk")
    send(first, 3)
    first.acknowledge(0)
    first.acknowledge(2)  # 1 never acknowledged: the process dies here
    restarted = Checkpoint(store, "police", "syrk")
    assert restarted.committed == position(0)
    assert restarted.rewind() == position(0)
    assert restarted.next_seq() == 0  # numbers restart with the process


def test_rewind_abandons_batches_in_flight_and_ignores_their_late_acks(
    store: FileCheckpointStore,
) -> None:
    checkpoint = Checkpoint(store, "police", "syrk")
    send(checkpoint, 4)
    checkpoint.acknowledge(0)
    checkpoint.acknowledge(2)
    assert checkpoint.rewind() == position(0)
    assert checkpoint.outstanding == 0
    for late in (1, 2, 3):  # acknowledgements of abandoned batches arrive after the rewind
        checkpoint.acknowledge(late)
    assert saved(store) == position(0)
    seq = checkpoint.next_seq()
    assert seq == 4
    checkpoint.pending(seq, {"low": "resumed", "seen": {}})
    checkpoint.acknowledge(seq)
    assert saved(store) == {"low": "resumed", "seen": {}}


def test_rewind_before_any_commit_returns_the_loaded_position(
    store: FileCheckpointStore,
) -> None:
    assert Checkpoint(store, "police", "syrk").rewind() is None
    store.save("police", "syrk", position(7))
    assert Checkpoint(store, "police", "syrk").rewind() == position(7)


def test_concurrent_acknowledgements_commit_the_last_position(
    store: FileCheckpointStore,
) -> None:
    checkpoint = Checkpoint(store, "police", "syrk")
    seqs = send(checkpoint, 200)
    random.Random(3).shuffle(seqs)

    def sink_worker(share: list[int]) -> None:
        for seq in share:
            checkpoint.acknowledge(seq)

    threads = [threading.Thread(target=sink_worker, args=(seqs[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert saved(store) == position(199)
    assert checkpoint.outstanding == 0


# --- SinkAcknowledgements --------------------------------------------------------------


@pytest.fixture
def checkpoint(store: FileCheckpointStore) -> Checkpoint:
    return Checkpoint(store, "police", "syrk")


@pytest.fixture
def acks(checkpoint: Checkpoint) -> SinkAcknowledgements:
    return SinkAcknowledgements({("police", "syrk"): checkpoint})


def test_a_batch_is_acknowledged_when_all_its_parts_are_stored(
    checkpoint: Checkpoint, acks: SinkAcknowledgements, store: FileCheckpointStore
) -> None:
    send(checkpoint, 2)
    acks.part_done("police", "syrk", 0, 2, 3)
    acks.part_done("police", "syrk", 0, 0, 3)
    assert saved(store) is None
    acks.part_done("police", "syrk", 0, 1, 3)
    assert saved(store) == position(0)
    acks.part_done("police", "syrk", 1, 0, 1)
    assert saved(store) == position(1)


def test_a_part_reported_twice_counts_once(
    checkpoint: Checkpoint, acks: SinkAcknowledgements, store: FileCheckpointStore
) -> None:
    send(checkpoint, 1)
    acks.part_done("police", "syrk", 0, 0, 2)
    acks.part_done("police", "syrk", 0, 0, 2)  # a replayed message
    assert saved(store) is None
    acks.part_done("police", "syrk", 0, 1, 2)
    assert saved(store) == position(0)


def test_parts_of_interleaved_batches_commit_in_sequence_order(
    checkpoint: Checkpoint, acks: SinkAcknowledgements, store: FileCheckpointStore
) -> None:
    send(checkpoint, 3)
    reports: list[tuple[int, int, int]] = [(2, 0, 1), (1, 1, 2), (0, 0, 2), (1, 0, 2)]
    for seq, part, parts in reports:
        acks.part_done("police", "syrk", seq, part, parts)
    assert saved(store) is None  # batch 0 still misses part 1
    acks.part_done("police", "syrk", 0, 1, 2)
    assert saved(store) == position(2)


def test_parts_of_an_unknown_entity_are_ignored(
    checkpoint: Checkpoint, acks: SinkAcknowledgements, store: FileCheckpointStore
) -> None:
    send(checkpoint, 1)
    acks.part_done("police", "jq", 0, 0, 1)
    acks.part_done("party", "syrk", 0, 0, 1)
    assert saved(store) is None
    assert checkpoint.outstanding == 1


def test_parts_of_batches_abandoned_by_a_rewind_are_ignored(
    checkpoint: Checkpoint, acks: SinkAcknowledgements, store: FileCheckpointStore
) -> None:
    send(checkpoint, 2)
    acks.part_done("police", "syrk", 0, 0, 1)
    acks.part_done("police", "syrk", 1, 0, 2)
    checkpoint.rewind()
    acks.part_done("police", "syrk", 1, 1, 2)  # completes batch 1, which was abandoned
    assert saved(store) == position(0)
    resumed: dict[str, Any] = {"low": "resumed", "seen": {}}
    seq = checkpoint.next_seq()
    checkpoint.pending(seq, resumed)
    acks.part_done("police", "syrk", seq, 0, 1)
    assert saved(store) == resumed
