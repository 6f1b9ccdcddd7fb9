"""Roster allowances in the merge: the newest edition of a roster decides who receives it.

civil-affairs.md: "The newest file replaces the month: a person missing from the
corrected roster no longer receives that allowance for that month. Processing a
file twice must not change the result." The merge applies roster rows and
RosterEdition records in any order, with duplicates, and ends with the same
``assistance`` per resident.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gridhub.streams.canonicalize import MAPPERS
from gridhub.streams.identity import ResidentKeyer
from gridhub.streams.merge_resident import MergeContext, ResidentMerger
from gridhub.streams.state_store import PartitionedResidentStore
from hypothesis import given, settings
from hypothesis import strategies as st

from gridhub.reference import load_reference

REF = load_reference(Path(__file__).resolve().parent.parent / "cases" / "reference")
KEYER = ResidentKeyer(b"county-320723-test-pseudonym-key")
NOW = datetime(2026, 11, 23, tzinfo=UTC)
PARTITIONS = 4
PEOPLE = {
    "A": "320723194001011234",
    "B": "32072319400202124X",
    "C": "320723194303031230",
}


def sha(version: str) -> str:
    return (version * 64)[:64]


def drop(month: str, version: str, minute: int, people: str) -> list[dict[str, Any]]:
    """The rows of one roster file and its edition, as the route stage hands them on."""
    file_time = datetime(2026, 11, 1, 9, minute, tzinfo=UTC)
    name = f"高龄津贴_{month}.csv"
    rows = [
        MAPPERS[("civil", "roster_elderly")](
            {
                "file_name": name,
                "month": month,
                "file_time": file_time,
                "file_sha256": sha(version),
                "seq": seq,
                "name": f"老人{who}",
                "id_number": PEOPLE[who],
                "gender": "男",
                "age": 86,
                "community_name": "幸福社区",
                "community_code": "320723100001",
                "amount": "150.00",
                "phone": None,
                "remark": None,
            },
            KEYER.for_id(PEOPLE[who]),
            NOW,
        )
        for seq, who in enumerate(people, start=1)
    ]
    edition = {
        "allowance": "高龄津贴",
        "file_name": name,
        "month": month,
        "file_time": file_time,
        "file_sha256": sha(version),
        "rows": len(people),
        "rejected": 0,
    }
    return [*rows, {"edition": edition}]


class Merge:
    """A merger over a partitioned store, fed the way the merge agent feeds it."""

    def __init__(self, store: PartitionedResidentStore) -> None:
        self.store = store
        self.latest: dict[str, list[str]] = {}

    def feed(self, items: list[dict[str, Any]]) -> None:
        merger = ResidentMerger(self.store, MergeContext(REF))
        rows: list[tuple[str, dict[str, Any]]] = []
        for item in items:
            if "edition" in item:
                for partition in range(PARTITIONS):  # the route stage broadcasts it
                    rows += merger.apply_editions(partition, [item["edition"]])
            else:
                rows += merger.merge([item])
        merger.commit()
        for name, row in rows:
            if name == "ResidentRecord":
                self.latest[row["resident_key"]] = row["assistance"]

    def assistance(self, who: str) -> list[str]:
        return self.latest[KEYER.for_id(PEOPLE[who])]


@pytest.fixture
def merge(tmp_path: Path) -> Iterator[Merge]:
    store = PartitionedResidentStore(tmp_path / "residents", PARTITIONS)
    yield Merge(store)
    store.close()


def test_the_edition_gives_the_allowance_to_whom_it_lists(merge: Merge) -> None:
    *rows, edition = drop("202610", "a", 0, "AB")
    merge.feed(rows)
    assert merge.assistance("A") == merge.assistance("B") == []  # listed, edition not yet read
    merge.feed([edition])
    assert merge.assistance("A") == merge.assistance("B") == ["高龄津贴"]


def test_a_corrected_roster_removes_who_it_no_longer_lists(merge: Merge) -> None:
    merge.feed(drop("202611", "a", 0, "ABC"))
    merge.feed(drop("202611", "b", 5, "AC"))  # re-dropped under the same name without B
    assert merge.assistance("A") == merge.assistance("C") == ["高龄津贴"]
    assert merge.assistance("B") == []


def test_a_new_month_replaces_the_one_before(merge: Merge) -> None:
    merge.feed(drop("202610", "a", 0, "AB"))
    merge.feed(drop("202611", "b", 0, "A"))
    assert merge.assistance("A") == ["高龄津贴"]
    assert merge.assistance("B") == []


def test_an_older_edition_read_late_changes_nothing(merge: Merge) -> None:
    merge.feed(drop("202611", "b", 0, "A"))
    before = dict(merge.latest)
    merge.feed(drop("202610", "a", 0, "AB"))  # a replay of October after November
    assert merge.assistance("A") == ["高龄津贴"]
    assert merge.latest.get(KEYER.for_id(PEOPLE["B"]), []) == []
    assert merge.assistance("A") == before[KEYER.for_id(PEOPLE["A"])]


def test_the_same_edition_again_re_emits_its_residents(merge: Merge) -> None:
    file = drop("202610", "a", 0, "AB")
    merge.feed(file)
    merge.latest.clear()
    merge.feed([file[-1]])  # after a crash its rows may never have been stored
    assert merge.assistance("A") == merge.assistance("B") == ["高龄津贴"]


def test_editions_survive_a_restart(tmp_path: Path) -> None:
    store = PartitionedResidentStore(tmp_path / "residents", PARTITIONS)
    Merge(store).feed(drop("202610", "a", 0, "A"))
    store.close()
    reopened = PartitionedResidentStore(tmp_path / "residents", PARTITIONS)
    try:
        again = Merge(reopened)
        *rows, _ = drop("202610", "a", 0, "B")  # B's row of the same file, read late
        again.feed(rows)
        assert again.assistance("B") == ["高龄津贴"]
    finally:
        reopened.close()


FILES = [
    drop("202610", "a", 0, "ABC"),
    drop("202611", "b", 0, "ABC"),
    drop("202611", "c", 9, "AC"),  # the correction: B is no longer listed
]


@settings(max_examples=40, deadline=None)
@given(
    order=st.permutations([item for file in FILES for item in file]),
    duplicates=st.lists(st.integers(0, sum(map(len, FILES)) - 1), max_size=4),
    cut=st.integers(1, 6),
)
def test_any_order_with_duplicates_ends_the_same(
    tmp_path_factory: pytest.TempPathFactory, order: list[Any], duplicates: list[int], cut: int
) -> None:
    items = order + [order[i] for i in duplicates]
    store = PartitionedResidentStore(tmp_path_factory.mktemp("r") / "residents", PARTITIONS)
    try:
        merge = Merge(store)
        for start in range(0, len(items), cut):
            merge.feed(items[start : start + cut])
        assert merge.assistance("A") == merge.assistance("C") == ["高龄津贴"]
        assert merge.assistance("B") == []
    finally:
        store.close()
