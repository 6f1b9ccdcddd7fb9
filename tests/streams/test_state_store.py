"""Resident states per partition: several merge processes share the merge, one owner at a
time per partition, and a new owner waits for the old one to let go."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from gridhub.streams import state_store
from gridhub.streams.identity import ResidentKeyer, partition_for
from gridhub.streams.merge_resident import ResidentState
from gridhub.streams.state_store import PartitionedResidentStore, StateStoreBusy

KEYER = ResidentKeyer(b"county-320723-test-pseudonym-key")
PARTITIONS = 4


def keys_by_partition() -> dict[int, str]:
    """One resident key for every partition."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < PARTITIONS:
        key = KEYER.for_id(f"{n:018d}")
        found.setdefault(partition_for(key, PARTITIONS), key)
        n += 1
    return found


def test_states_live_in_the_database_of_their_partition(tmp_path: Path) -> None:
    keys = keys_by_partition()
    store = PartitionedResidentStore(tmp_path, PARTITIONS)
    store.save({key: ResidentState(version=p + 1) for p, key in keys.items()})
    assert store.open_partitions == set(range(PARTITIONS))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["p0", "p1", "p2", "p3"]
    assert store.release({0, 1}) == [2, 3]
    assert store.open_partitions == {0, 1}
    loaded = store.load(keys.values())  # reopens what it needs
    assert {key: state.version for key, state in loaded.items()} == {
        key: p + 1 for p, key in keys.items()
    }
    unknown = KEYER.for_id("999999999999999999")
    assert store.load([unknown])[unknown] == ResidentState()
    store.close()
    assert store.open_partitions == set()


HOLDER = """
import sys, time
from pathlib import Path
from gridhub.streams.merge_resident import ResidentStore
store = ResidentStore(Path(sys.argv[1]))
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
store.close()
"""


def hold_partition(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process (another merge process) holding a partition's database."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_new_owner_waits_until_the_old_one_lets_go(tmp_path: Path) -> None:
    keys = keys_by_partition()
    holder = hold_partition(tmp_path / "p0", 1.0)
    store = PartitionedResidentStore(tmp_path, PARTITIONS)
    started = time.monotonic()
    store.save({keys[0]: ResidentState(version=7)})
    assert time.monotonic() - started >= 0.5  # it waited for the lock
    assert holder.wait(timeout=10) == 0
    assert store.load([keys[0]])[keys[0]].version == 7
    store.close()


def test_a_partition_held_too_long_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_store, "OPEN_TIMEOUT_S", 0.3)
    keys = keys_by_partition()
    holder = hold_partition(tmp_path / "p1", 5.0)
    try:
        store = PartitionedResidentStore(tmp_path, PARTITIONS)
        with pytest.raises(StateStoreBusy, match=r"partition 1 .* still held by another process"):
            store.load([keys[1]])
        store.close()
    finally:
        holder.kill()
        holder.wait()
