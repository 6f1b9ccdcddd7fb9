"""The roster connector reads the clerks' folder as civil-affairs.md describes it.

Real files written by the simulator's ``RosterDirectory`` (GBK CSV with a blank
first line and a total line, XLSX with a merged title row, ``.ok`` markers),
a real ``RosterSource`` and the embedded broker; what reached the raw topics
and the dead letters is read back with an independent Kafka client.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from gridhub.connectors.base.checkpoint import Checkpoint, FileCheckpointStore
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.civil_affairs.roster_source import CHECKPOINT, EDITIONS, RosterSource
from gridhub.connectors.civil_affairs.rosters import (
    ELDERLY,
    RosterUnreadable,
    complete_rosters,
    read_roster,
)
from gridhub.schemas import MODELS
from gridhub.schemas.serde import decode
from gridhub.simulators.idcards import make_id, spreadsheet_mangled
from gridhub.simulators.rosters import RosterDirectory
from hypothesis import given
from openpyxl import load_workbook
from pydantic import SecretStr

from gridhub.config import CivilSourceConfig
from gridhub.errors import SourceUnavailable
from gridhub.runtime.broker import EmbeddedBroker
from tests.connectors.conftest import RawTopics, _read_topic, plans, property_settings


def person_id(n: int) -> str:
    return make_id("320723", date(1940, 1, 1) + timedelta(days=n), n % 900 + 10)


def elderly(n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "序号": n,
        "姓名": f"老人{n}",
        "身份证号码": person_id(n),
        "性别": "女" if n % 2 else "男",
        "年龄": 86,
        "所属社区": "幸福社区",
        "社区代码": "320723100001",
        "发放金额": Decimal("150.00"),
        "联系电话": "13912345678",
        "备注": "",
    }
    row.update(changes)
    return row


def disabled(n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "序号": n,
        "姓名": f"居民{n}",
        "身份证号": person_id(1000 + n),
        "残疾类别": "肢体",
        "残疾等级": "二级",
        "社区代码": "320723100001",
        "住址": "幸福路18号3幢",
        "补贴金额": Decimal("190.00"),
    }
    row.update(changes)
    return row


# --- reading one file ------------------------------------------------------------------


def only_roster(directory: Path) -> Any:
    rosters = complete_rosters(directory)
    assert len(rosters) == 1
    return rosters[0]


def test_gbk_csv_with_blank_line_total_line_and_a_mangled_id(tmp_path: Path) -> None:
    folder = RosterDirectory(tmp_path)
    mangled = spreadsheet_mangled(person_id(3))
    folder.drop_elderly("202610", [elderly(1), elderly(2), elderly(3, 身份证号码=mangled)])
    roster = only_roster(tmp_path)
    assert roster.kind is ELDERLY and roster.month == "202610"
    content = read_roster(roster, roster.path.read_bytes(), "0" * 64)
    assert [row["id_number"] for row in content.rows] == [person_id(1), person_id(2), mangled]
    assert content.problems == []  # the mangled ID is the route stage's to refuse, with reason
    first = MODELS["ElderlyAllowanceRow"].model_validate(content.rows[0])
    assert first.model_dump()["amount"] == Decimal("150.00")
    assert first.model_dump()["name"] == "老人1"


def test_xlsx_with_merged_title_and_an_id_stored_as_a_number(tmp_path: Path) -> None:
    folder = RosterDirectory(tmp_path)
    path = folder.drop_disability("202610", [disabled(1), disabled(2)], without_marker=True)
    book = load_workbook(path)
    sheet = book.worksheets[0]
    sheet.cell(row=4, column=3, value=float(person_id(1002)))  # a clerk retyped it as a number
    book.save(path)
    folder.mark_complete(path)
    roster = only_roster(tmp_path)
    content = read_roster(roster, path.read_bytes(), "0" * 64)
    assert [row["id_number"] for row in content.rows] == [person_id(1001)]
    assert Decimal(content.rows[0]["amount"]) == Decimal("190.00")
    assert MODELS["DisabilitySubsidyRow"].model_validate(content.rows[0])
    [problem] = content.problems
    assert problem.line == 4 and "stored as a number" in problem.reason


def test_a_file_without_its_marker_or_rewritten_after_it_is_not_read(tmp_path: Path) -> None:
    folder = RosterDirectory(tmp_path)
    folder.drop_elderly("202610", [elderly(1)], without_marker=True)
    assert complete_rosters(tmp_path) == []
    done = folder.drop_disability("202610", [disabled(1)])
    assert [r.name for r in complete_rosters(tmp_path)] == [done.name]
    marker = done.with_name(done.name + ".ok")
    old = marker.stat().st_mtime_ns - 5_000_000_000
    os.utime(marker, ns=(old, old))  # the file is newer than its marker: a re-drop under way
    assert complete_rosters(tmp_path) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("序号,姓名\r\n1,张三\r\n".encode("gbk"), "no header row"),
        (b"\x81\x20\x81\x20not gbk", "not GBK text"),
    ],
)
def test_unreadable_csv_says_why(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "高龄津贴_202610.csv"
    path.write_bytes(data)
    RosterDirectory(tmp_path).mark_complete(path)
    with pytest.raises(RosterUnreadable, match=message):
        read_roster(only_roster(tmp_path), data, "0" * 64)


def test_broken_workbook_and_a_row_with_missing_cells(tmp_path: Path) -> None:
    path = tmp_path / "残疾人两项补贴_202610.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    RosterDirectory(tmp_path).mark_complete(path)
    with pytest.raises(RosterUnreadable, match="not a readable XLSX"):
        read_roster(only_roster(tmp_path), path.read_bytes(), "0" * 64)
    path.unlink()
    path.with_name(path.name + ".ok").unlink()
    csv_path = RosterDirectory(tmp_path).drop_elderly("202611", [elderly(1)], total_line=False)
    text = csv_path.read_bytes().decode("gbk") + "2,老人2,only three\r\n"
    csv_path.write_bytes(text.encode("gbk"))
    RosterDirectory(tmp_path).mark_complete(csv_path)
    content = read_roster(only_roster(tmp_path), csv_path.read_bytes(), "0" * 64)
    assert len(content.rows) == 1
    [problem] = content.problems
    assert "3 cells where the header has 10" in problem.reason


# --- the connector against the broker -----------------------------------------------------


@pytest.fixture
def roster_raw(broker: EmbeddedBroker) -> RawTopics:
    return RawTopics(broker.bootstrap, source="civil")


class Connector:
    """RosterSource instances sharing one checkpoint directory (restart = a new one)."""

    def __init__(self, raw: RawTopics, folder: Path, state: Path) -> None:
        self.config = CivilSourceConfig(
            dsn=SecretStr("postgresql://unused@127.0.0.1/none"), roster_dir=folder, batch_rows=2
        )
        self.raw = raw
        self.store = FileCheckpointStore(state)
        self.sources: list[RosterSource] = []
        self.ack_on_publish = True
        """False: batches are acknowledged only by :meth:`acknowledge_all` (the embedded
        broker's sink acknowledges what it stored)."""

    def start(self) -> RosterSource:
        shared = Checkpoint(self.store, "civil", CHECKPOINT)
        source = RosterSource(
            self.config,
            EnvelopePublisher(self.raw.bootstrap, self.raw.topics),
            dict.fromkeys(RosterSource.entities, shared),
            ack_on_publish=self.ack_on_publish,
        )
        self.sources.append(source)
        return source

    @staticmethod
    def acknowledge_all(source: RosterSource) -> None:
        """Every batch the source published is stored."""
        checkpoint = source.checkpoints[EDITIONS]
        for seq in range(checkpoint.next_seq()):
            checkpoint.acknowledge(seq)

    def close(self) -> None:
        for source in self.sources:
            source.publisher.close()


@pytest.fixture
def connector(roster_raw: RawTopics, tmp_path: Path) -> Iterator[Connector]:
    made = Connector(roster_raw, tmp_path / "inbox", tmp_path / "checkpoints")
    yield made
    made.close()


def listed(raw: RawTopics, entity: str) -> list[tuple[str, str]]:
    """(file sha prefix, id number) of every roster row published."""
    return [(d["file_sha256"][:8], d["id_number"]) for d in map(_data, raw.records(entity))]


def editions(raw: RawTopics) -> list[dict[str, Any]]:
    return [_data(record) for record in raw.records("roster_editions")]


def _data(record: bytes) -> dict[str, Any]:
    return decode(record)[1]


def dead_letters(raw: RawTopics) -> list[dict[str, Any]]:
    messages = asyncio.run(_read_topic(raw.bootstrap, raw.topics.dead_letters))
    return [_data(letter) for _, value in messages for letter in decode(value)[1]["records"]]


def test_rows_then_one_edition_per_file_and_nothing_twice(
    connector: Connector, roster_raw: RawTopics
) -> None:
    folder = RosterDirectory(connector.config.roster_dir or Path())
    folder.drop_elderly("202610", [elderly(n) for n in range(1, 6)])
    folder.drop_disability("202610", [disabled(1)])
    source = connector.start()
    assert source.poll() == 5 + 1 + 1 + 1
    assert source.poll() == 0  # nothing new: nothing published
    assert [e[1] for e in listed(roster_raw, "roster_elderly")] == [
        person_id(n) for n in range(1, 6)
    ]
    assert len(roster_raw.batches("roster_elderly")) == 3  # batch_rows = 2
    assert sorted((e["allowance"], e["month"], e["rows"]) for e in editions(roster_raw)) == [
        ("残疾人补贴", "202610", 1),
        ("高龄津贴", "202610", 5),
    ]
    restarted = connector.start()  # the committed position says both files are done
    assert restarted.poll() == 0


def test_a_corrected_roster_is_a_new_edition_and_a_touched_marker_is_not(
    connector: Connector, roster_raw: RawTopics
) -> None:
    folder = RosterDirectory(connector.config.roster_dir or Path())
    first = folder.drop_elderly("202611", [elderly(1), elderly(2), elderly(3)])
    source = connector.start()
    source.poll()
    marker = first.with_name(first.name + ".ok")
    later = marker.stat().st_mtime_ns + 2_000_000_000
    os.utime(marker, ns=(later, later))  # a clerk copies the same file again
    assert source.poll() == 0
    corrected = [elderly(1), elderly(3)]  # person 2 is no longer listed
    folder.drop_elderly("202611", corrected)
    marker_time = marker.stat().st_mtime_ns + 2_000_000_000
    os.utime(marker, ns=(marker_time, marker_time))
    assert source.poll() == 3
    first_edition, second_edition = editions(roster_raw)
    assert first_edition["month"] == second_edition["month"] == "202611"
    assert first_edition["file_sha256"] != second_edition["file_sha256"]
    assert second_edition["file_time"] > first_edition["file_time"]
    rows = listed(roster_raw, "roster_elderly")
    assert rows[3:] == [(second_edition["file_sha256"][:8], person_id(n)) for n in (1, 3)]


def test_unreadable_file_and_bad_rows_go_to_dead_letters_and_others_go_on(
    connector: Connector, roster_raw: RawTopics
) -> None:
    inbox = connector.config.roster_dir or Path()
    folder = RosterDirectory(inbox)
    broken = inbox / "残疾人两项补贴_202610.xlsx"
    broken.write_bytes(b"not a workbook at all")
    folder.mark_complete(broken)
    good = folder.drop_elderly("202610", [elderly(1)], total_line=False)
    text = good.read_bytes().decode("gbk") + "2,老人2\r\n"
    good.write_bytes(text.encode("gbk"))
    folder.mark_complete(good)
    source = connector.start()
    assert source.poll() == 2  # one row and its edition
    assert source.health.healthy
    letters = {letter["source_key"]: letter for letter in dead_letters(roster_raw)}
    assert letters[""]["entity"] == "roster_disability"
    assert "not a readable XLSX" in letters[""]["reason"]
    assert letters[""]["raw"] == b"not a workbook at all"
    assert "2 cells where the header has 10" in letters["高龄津贴_202610.csv#4"]["reason"]
    assert [e["file_name"] for e in editions(roster_raw)] == ["高龄津贴_202610.csv"]
    assert source.poll() == 0  # the broken file is not read again until it is re-dropped


def test_missing_folder_is_unhealthy_and_then_read(connector: Connector) -> None:
    source = connector.start()
    with pytest.raises(SourceUnavailable, match=r"roster folder .* cannot be read"):
        source.poll()
    RosterDirectory(connector.config.roster_dir or Path()).drop_elderly("202610", [elderly(1)])
    assert source.poll() == 2


def test_replay_since_reads_again_what_was_completed_since(
    connector: Connector, roster_raw: RawTopics
) -> None:
    inbox = connector.config.roster_dir or Path()
    folder = RosterDirectory(inbox)
    october = folder.drop_elderly("202610", [elderly(1)])
    november = folder.drop_elderly("202611", [elderly(1), elderly(2)])
    old = datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1e9
    os.utime(october.with_name(october.name + ".ok"), ns=(int(old), int(old)))
    os.utime(october, ns=(int(old), int(old)))
    source = connector.start()
    assert source.poll() == 2 + 3
    connector.store.save(
        "civil", CHECKPOINT, RosterSource.position_since(datetime(2026, 11, 2, tzinfo=UTC))
    )
    replayed = connector.start()
    assert replayed.poll() == 3  # November again, October stays done
    assert [e["file_name"] for e in editions(roster_raw)][-1] == november.name


# --- random interleavings ----------------------------------------------------------------

ROSTER_PLANS = plans(["drop", "redrop", "copying", "touch", "poll", "crash", "restart"], keys=3)
"""Steps on three roster files: (action, which file)."""


class Clock:
    """File times that always move forward (a clerk's copy jobs are seconds apart)."""

    def __init__(self) -> None:
        self.ns = 1_790_000_000_000_000_000

    def stamp(self, *paths: Path) -> None:
        for path in paths:
            self.ns += 1_000_000_000
            os.utime(path, ns=(self.ns, self.ns))


@property_settings
@given(plan=ROSTER_PLANS)
def test_random_interleavings_publish_every_complete_version_and_replace_the_month(
    broker: EmbeddedBroker, tmp_path: Path, plan: list[tuple[str, int]]
) -> None:
    """Drops, corrections, copies caught half-way, touched markers, polls, crashes with
    batches unacknowledged and restarts, in any order: every version complete at a poll is
    published (its rows, then its edition), a republished version is recognisable by its
    digest, and after a last poll the newest edition of each file is its current content."""
    raw = RawTopics(broker.bootstrap, source="civil")
    connector = Connector(raw, tmp_path / secrets.token_hex(4), tmp_path / secrets.token_hex(4))
    folder = RosterDirectory(connector.config.roster_dir or Path())
    clock = Clock()
    months = ("202609", "202610", "202611")
    version = 0
    complete: dict[str, bytes] = {}  # file name -> content its marker vouches for
    seen_complete: set[str] = set()  # digests complete when a poll ran
    connector.ack_on_publish = False
    source = connector.start()
    try:
        for action, n in plan:
            month = months[n]
            version += 1
            people = [
                elderly(k, 发放金额=Decimal(100 + version)) for k in range(1, 2 + n + version % 3)
            ]
            if action in ("drop", "redrop", "copying"):
                path = folder.drop_elderly(month, people, without_marker=True)
                clock.stamp(path)
                if action != "copying":  # a copy caught half-way has no new marker yet
                    clock.stamp(folder.mark_complete(path))
                    complete[path.name] = path.read_bytes()
            elif action == "touch" and complete:
                name = sorted(complete)[n % len(complete)]
                marker = folder.path / f"{name}.ok"
                if marker.stat().st_mtime_ns >= (folder.path / name).stat().st_mtime_ns:
                    clock.stamp(marker)
            elif action == "poll":
                source.poll()
                seen_complete |= {
                    hashlib.sha256(data).hexdigest()
                    for name, data in complete.items()
                    if (folder.path / f"{name}.ok").stat().st_mtime_ns
                    >= (folder.path / name).stat().st_mtime_ns
                }
            elif action == "crash":  # kill -9: batches not yet stored are never acknowledged
                source.publisher.close()
                source = connector.start()
            elif action == "restart":  # everything published was stored
                connector.acknowledge_all(source)
                source.publisher.close()
                source = connector.start()
        for name in list(complete):
            path = folder.path / name
            if (folder.path / f"{name}.ok").stat().st_mtime_ns < path.stat().st_mtime_ns:
                clock.stamp(folder.mark_complete(path))  # the half-way copies finish
                complete[name] = path.read_bytes()
        source.poll()
        seen_complete |= {hashlib.sha256(data).hexdigest() for data in complete.values()}
    finally:
        source.publisher.close()
    published = editions(raw)
    digests = {e["file_sha256"] for e in published}
    assert seen_complete <= digests, "a complete version was never published"
    rows_by_digest: dict[str, int] = {}
    for record in raw.records("roster_elderly"):
        data = _data(record)
        rows_by_digest[data["file_sha256"]] = rows_by_digest.get(data["file_sha256"], 0) + 1
    for edition in published:  # rows before their edition, as many as it says, each time
        assert rows_by_digest[edition["file_sha256"]] % edition["rows"] == 0
    newest: dict[str, dict[str, Any]] = {}
    for edition in published:
        newest[edition["file_name"]] = edition
    assert {name: e["file_sha256"] for name, e in newest.items()} == {
        name: hashlib.sha256(data).hexdigest() for name, data in complete.items()
    }
