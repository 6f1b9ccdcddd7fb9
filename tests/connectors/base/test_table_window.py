"""TableWindow and row_digest: a polled table's position, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gridhub.connectors.base.table_window import TableWindow, row_digest

T = datetime(2025, 6, 1, 9, 30, 0)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def row(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rkbh": "3207230000000001", "gmsfhm": "320722196511254191", "xm": "林怡", "xb": "1",
        "csrq": "19651125", "lxdh": None, "hjdz": None, "jzdz": "灌云县伊山镇幸福路18号",
        "dzbm": None, "rylb": "01", "zrq": "320723510000-01", "zxbz": "0", "gxsj": T,
    }  # fmt: skip
    base.update(fields)
    return base


def test_a_fresh_window_reads_from_the_beginning() -> None:
    window = TableWindow(None, 30)
    assert window.low is None
    assert window.seen == {}
    assert window.position() == {"low": None, "seen": {}}
    window.advance(None)  # an empty table moves nothing
    assert window.low is None


def test_accept_publishes_each_version_once() -> None:
    window = TableWindow(None, 30)
    assert window.accept("A", at(0), "d1")
    assert not window.accept("A", at(0), "d1")  # read again through the lookback
    assert window.accept("A", at(0), "d2")  # second update inside the same second
    assert window.accept("A", at(1), "d2")  # same content, new stamp: a new version
    assert window.accept("B", at(0), "d1")  # versions are per key
    assert window.seen == {"A": ("2025-06-01 09:30:01", "d2"), "B": ("2025-06-01 09:30:00", "d1")}


def test_advance_moves_low_to_newest_minus_lookback_and_never_back() -> None:
    window = TableWindow(None, 30)
    window.advance(at(100))
    assert window.low == at(70)
    window.advance(at(90))  # a later page never lowers the floor
    assert window.low == at(70)
    window.advance(at(100))
    assert window.low == at(70)
    window.advance(at(101))
    assert window.low == at(71)


def test_advance_forgets_versions_older_than_low_only() -> None:
    window = TableWindow(None, 10)
    window.accept("old", at(0), "d")
    window.accept("edge", at(5), "d")
    window.accept("new", at(9), "d")
    window.advance(at(15))  # low = at(5): rows at exactly low are still read, so kept
    assert set(window.seen) == {"edge", "new"}
    window.advance(at(16))
    assert set(window.seen) == {"new"}


def test_position_round_trips_through_json() -> None:
    window = TableWindow(None, 30)
    window.accept("3207230000000001", at(0), "aa")
    window.accept("3207230000000002", at(2), "bb")
    window.advance(at(20))
    stored = json.loads(json.dumps(window.position()))
    assert stored == {
        "low": "2025-06-01 09:29:50",
        "seen": {
            "3207230000000001": ["2025-06-01 09:30:00", "aa"],
            "3207230000000002": ["2025-06-01 09:30:02", "bb"],
        },
    }
    resumed = TableWindow(stored, 30)
    assert resumed.low == window.low
    assert resumed.seen == window.seen
    assert resumed.position() == window.position()
    assert not resumed.accept("3207230000000002", at(2), "bb")  # already published


def test_resuming_with_another_lookback_keeps_the_saved_low() -> None:
    resumed = TableWindow({"low": "2025-06-01 09:29:50", "seen": {}}, 60)
    assert resumed.low == at(-10)
    resumed.advance(at(40))  # 40 - 60 = -20 is below the saved low: unchanged
    assert resumed.low == at(-10)


@pytest.mark.parametrize(("lookback", "per_second"), [(0, 3), (10, 1), (30, 5)])
def test_the_seen_set_is_bounded_by_write_rate_times_lookback(
    lookback: int, per_second: int
) -> None:
    window = TableWindow(None, lookback)
    largest = 0
    key = 0
    for second in range(600):
        for _ in range(per_second):
            key += 1
            window.accept(f"K{key}", at(second), "d")
        window.advance(at(second))
        largest = max(largest, len(window.seen))
    assert largest == per_second * (lookback + 1)  # the seconds from low through newest
    assert key == 600 * per_second


def test_row_digest_changes_with_any_column_and_nothing_else() -> None:
    base = row()
    assert row_digest(base) == row_digest(dict(base))
    assert len(row_digest(base)) == 16
    for column, value in [
        ("jzdz", "灌云县伊山镇幸福路19号"),
        ("zxbz", "1"),
        ("gxsj", at(1)),
        ("lxdh", "0518-88123456"),
        ("gmsfhm", "32072219651125419x"),
    ]:
        assert row_digest(base) != row_digest(row(**{column: value})), column


def test_row_digest_tells_null_from_empty() -> None:
    """A clerk clearing a phone number may leave NULL or ''; inside one second only the
    digest tells the two versions apart."""
    assert row_digest(row(lxdh=None)) != row_digest(row(lxdh=""))
    assert row_digest(row(hjdz=None, dzbm="")) != row_digest(row(hjdz="", dzbm=None))


def test_microsecond_stamps_keep_their_order_and_survive_the_position() -> None:
    """PostgreSQL ``updated_at`` (civil): ISO 8601 with microseconds, UTC."""
    t0 = datetime(2026, 10, 23, 2, 0, 0, 999_999, tzinfo=UTC)
    window = TableWindow(None, 30, time_format=None)
    assert window.accept("41", t0, "d1")
    assert window.accept("41", t0 + timedelta(microseconds=1), "d1")  # a new version
    assert not window.accept("41", t0 + timedelta(microseconds=1), "d1")
    window.advance(t0 + timedelta(seconds=31))
    assert window.low == t0 + timedelta(seconds=1)
    assert window.seen == {}  # both versions are older than low now
    window.accept("42", t0 + timedelta(seconds=5), "d2")
    again = TableWindow(json.loads(json.dumps(window.position())), 30, time_format=None)
    assert again.low == window.low and again.seen == window.seen
    assert not again.accept("42", t0 + timedelta(seconds=5), "d2")
