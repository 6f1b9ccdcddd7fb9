"""Stage 2: person events become one resident record, replays change nothing (identity.md)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gridhub.schemas import (
    EventRow,
    GridDeparture,
    ResidentRecord,
    UnlinkedRecord,
    encode_dict,
)
from gridhub.streams.canonicalize import MAPPERS
from gridhub.streams.identity import ResidentKeyer
from gridhub.streams.merge_resident import (
    MergeContext,
    ResidentMerger,
    ResidentState,
    ResidentStore,
    build_resident,
    policy_with,
)
from gridhub.streams.placement import place
from gridhub.streams.state_store import PartitionedResidentStore

from gridhub.reference import load_reference
from tests.cases.police_rows import JQ_ROW, JZDX_ROW, MEMBER, SYRK_ROW, TICKET

REFERENCE = Path(__file__).resolve().parent.parent / "cases" / "reference"
REF = load_reference(REFERENCE)
KEYER = ResidentKeyer(b"county-320723-test-pseudonym-key")
NOW = datetime(2026, 10, 23, 0, 0, tzinfo=UTC)
GRID_3 = "320723100001003"
MODELS = {
    "ResidentRecord": ResidentRecord,
    "EventRow": EventRow,
    "UnlinkedRecord": UnlinkedRecord,
    "GridDeparture": GridDeparture,
}

WANG_ID = "32072319650101123X"  # 17th digit odd: male
LI_ID = "320723198001011240"  # 17th digit even: female
SYRK: dict[str, Any] = {
    **SYRK_ROW,
    "lxdh": "0518-88123456",
    "jzdz": "灌云县伊山镇幸福路18号幸福家园3栋2单元302室",
    "zxbz": "0",
}
JQ: dict[str, Any] = {**JQ_ROW, "jd": None, "wd": None}


def syrk(id18: str = WANG_ID, **changes: Any) -> dict[str, Any]:
    """The canonical event of a syrk row (the row with ``changes``) of the resident ``id18``."""
    return MAPPERS[("police", "syrk")]({**SYRK, **changes}, KEYER.for_id(id18), NOW)


def jq(reporter_id: str | None = None, **changes: Any) -> dict[str, Any]:
    data = {**JQ, "bjrsfzh": reporter_id, **changes}
    key = KEYER.for_id(reporter_id) if reporter_id else None
    return MAPPERS[("police", "jq")](data, key, NOW)


def resident_of(*events: dict[str, Any]) -> dict[str, Any]:
    state = ResidentState()
    for event in events:
        state.apply(event)
    return build_resident(events[0]["resident_key"], state, MergeContext(REF), NOW, 1)


def valid(name: str, row: dict[str, Any]) -> None:
    """The row is what its table's model and Avro schema accept."""
    MODELS[name].model_validate(row)
    encode_dict(name, row)


# --- ResidentState.apply ----------------------------------------------------------------


def test_the_same_event_twice_changes_nothing() -> None:
    state = ResidentState()
    event = syrk()
    assert state.apply(event)
    before = copy.deepcopy(state.contributions)
    assert not state.apply(copy.deepcopy(event))
    assert state.contributions == before


def test_an_older_version_after_a_newer_one_is_ignored() -> None:
    state = ResidentState()
    newer = syrk(xm="王芳芳", gxsj=datetime(2026, 10, 23, 8, 0, 0))
    assert state.apply(newer)
    assert not state.apply(syrk())
    (kept,) = state.contributions.values()
    assert kept["name"] == "王芳芳"
    assert kept["event_time"] == datetime(2026, 10, 23, 0, 0, tzinfo=UTC).timestamp()


def test_a_different_payload_in_the_same_second_replaces_the_version() -> None:
    state = ResidentState()
    assert state.apply(syrk())
    assert state.apply(syrk(lxdh="13912345678"))
    (kept,) = state.contributions.values()
    assert kept["phone"] == "13912345678"
    assert "payload" not in kept  # the state keeps what survivorship needs, not the record


def test_each_source_record_is_its_own_contribution() -> None:
    state = ResidentState()
    assert state.apply(syrk())
    assert state.apply(jq(WANG_ID))
    assert sorted(state.contributions) == [
        "police:jq:J3207232026102200001",
        "police:syrk:R320723000001",
    ]


def test_versions_only_grow() -> None:
    state = ResidentState(version=2**62)
    first = state.next_version()
    assert first == 2**62 + 1
    assert state.next_version() > first
    assert ResidentState().next_version() > 1_700_000_000 * 10**9


# --- build_resident ----------------------------------------------------------------------


def test_police_only_survivorship() -> None:
    event = syrk()
    resident = resident_of(event)
    stamp = "police@2026-10-22T01:30:05+00:00"
    assert resident["resident_key"] == KEYER.for_id(WANG_ID)
    assert resident["id_number"] == WANG_ID
    assert resident["name"] == "王芳"
    assert resident["gender"] == "男"  # xb = 9 is no value: read from the ID number
    assert resident["birth_date"] == date(1965, 1, 1)
    assert resident["phone"] == "051888123456"
    assert (resident["placement"], resident["grid_code"], resident["community_code"]) == (
        "address_id",
        GRID_3,
        "320723100001",
    )
    assert resident["address"] == SYRK["jzdz"]
    assert resident["population_type"] == "流动"
    assert resident["deregistered"] is False
    assert resident["sources"] == ["police"]
    assert resident["incidents"] == 0
    assert resident["conflicts"] == []
    assert resident["field_sources"] == {
        "name": stamp,
        "gender": "id_number",
        "birth_date": stamp,
        "phone": stamp,
        "address": stamp,
        "grid_code": stamp,
        "population_type": stamp,
        "deregistered": stamp,
    }
    assert (resident["version"], resident["updated_at"]) == (1, NOW)
    valid("ResidentRecord", resident)


def test_a_police_gender_that_contradicts_the_id_is_kept_and_flagged() -> None:
    resident = resident_of(syrk(xb="2"))
    assert resident["gender"] == "女"
    assert resident["field_sources"]["gender"].startswith("police@")
    assert resident["conflicts"] == ["gender: 女 vs 男 (id_number)"]


def test_a_police_gender_that_agrees_with_the_id_is_no_conflict() -> None:
    resident = resident_of(syrk(xb="1"))
    assert resident["gender"] == "男" and resident["conflicts"] == []


def test_a_birth_date_that_contradicts_the_id_is_flagged() -> None:
    resident = resident_of(syrk(csrq="19650102"))
    assert resident["birth_date"] == date(1965, 1, 2)
    assert resident["conflicts"] == ["birth_date: 1965-01-02 vs 1965-01-01 (id_number)"]


def test_an_impossible_csrq_yields_to_the_id_date() -> None:
    resident = resident_of(syrk(csrq="19650231"))
    assert resident["birth_date"] == date(1965, 1, 1)
    assert resident["conflicts"] == []


def test_deregistration_and_incidents_of_the_reporter() -> None:
    resident = resident_of(syrk(zxbz="1", rylb="01"), jq(WANG_ID))
    assert resident["deregistered"] is True
    assert resident["population_type"] == "户籍"
    assert resident["incidents"] == 1
    # an incident's address and phone are evidence, never the resident's
    assert resident["grid_code"] == GRID_3
    assert resident["phone"] == "051888123456"
    valid("ResidentRecord", resident)


def test_the_newest_police_version_wins() -> None:
    resident = resident_of(syrk(), syrk(xm="王 芳芳", gxsj=datetime(2026, 10, 23, 8, 0, 0)))
    assert resident["name"] == "王芳芳"
    assert resident["field_sources"]["name"] == "police@2026-10-23T00:00:00+00:00"


# --- ResidentStore ---------------------------------------------------------------------


def test_store_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "residents"
    state = ResidentState(placement=(GRID_3, "320723100001", "address_id"), claimed={"139": "王芳"})
    state.apply(syrk())
    state.apply(jq(WANG_ID))
    state.next_version()
    key = KEYER.for_id(WANG_ID)
    store = ResidentStore(path)
    store.save({key: state})
    store.close()

    reopened = ResidentStore(path)
    try:
        loaded = reopened.load([key, KEYER.for_id(LI_ID)])
    finally:
        reopened.close()
    assert loaded[key] == state
    assert loaded[KEYER.for_id(LI_ID)] == ResidentState()
    again = loaded[key]
    assert not again.apply(syrk())  # a replay onto the loaded state is still absorbed


# --- ResidentMerger --------------------------------------------------------------------


def kinds(rows: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, _ in rows:
        found[name] = found.get(name, 0) + 1
    return found


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartitionedResidentStore]:
    opened = PartitionedResidentStore(tmp_path / "state" / "residents", 4)
    yield opened
    opened.close()


def batch() -> list[dict[str, Any]]:
    return [
        syrk(),
        jq(WANG_ID),
        syrk(LI_ID, rkbh="R320723000002", gmsfhm=LI_ID, xm="李娜", xb="2", csrq="19800101"),
        jq(None, jqbh="J3207232026102200002"),
    ]


def test_merge_emits_one_resident_per_changed_resident_and_one_event_row_per_event(
    store: PartitionedResidentStore,
) -> None:
    rows = ResidentMerger(store, MergeContext(REF)).merge(batch())
    assert kinds(rows) == {"ResidentRecord": 2, "EventRow": 4, "UnlinkedRecord": 1}
    residents = {row["resident_key"]: row for name, row in rows if name == "ResidentRecord"}
    assert set(residents) == {KEYER.for_id(WANG_ID), KEYER.for_id(LI_ID)}
    assert residents[KEYER.for_id(WANG_ID)]["incidents"] == 1
    events = [row for name, row in rows if name == "EventRow"]
    assert [e["source_key"] for e in events] == [e["source_key"] for e in batch()]
    assert events[0]["grid_code"] == GRID_3  # where the record itself is placed
    (unlinked,) = [row for name, row in rows if name == "UnlinkedRecord"]
    expected = place(REF, address=JQ["fadz"], area_system="police", area_code=JQ["zrq"])
    assert (unlinked["grid_code"], unlinked["community_code"]) == (
        expected.grid_code,
        expected.community_code,
    )
    assert events[3]["resident_key"] is None
    assert events[3]["grid_code"] == expected.grid_code
    for name, row in rows:
        valid(name, row)


def residents_in(rows: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Resident rows by key, without what every computation changes."""
    ignore = {"version": 0, "updated_at": NOW}
    return {
        row["resident_key"]: {**row, **ignore} for name, row in rows if name == "ResidentRecord"
    }


def test_a_replayed_batch_emits_the_same_residents_again(store: PartitionedResidentStore) -> None:
    """After a crash the rows of a saved state may never have been stored: a replay of
    the current versions (the connectors pull again from their checkpoints) re-emits them."""
    merger = ResidentMerger(store, MergeContext(REF))
    first = merger.merge(batch())
    merger.commit()
    replay = ResidentMerger(store, MergeContext(REF)).merge(batch())
    assert kinds(replay) == {"ResidentRecord": 2, "EventRow": 4, "UnlinkedRecord": 1}
    assert residents_in(replay) == residents_in(first)
    events = [row for name, row in replay if name == "EventRow"]
    assert events == [row for name, row in first if name == "EventRow"]


def test_an_older_version_emits_no_resident_row(store: PartitionedResidentStore) -> None:
    merger = ResidentMerger(store, MergeContext(REF))
    merger.merge([syrk(gxsj=SYRK["gxsj"] + timedelta(days=1))])
    merger.commit()
    rows = ResidentMerger(store, MergeContext(REF)).merge([syrk()])
    assert kinds(rows) == {"EventRow": 1}


def test_a_replay_within_the_batch_changes_nothing(store: PartitionedResidentStore) -> None:
    merger = ResidentMerger(store, MergeContext(REF))
    first = merger.merge(batch())
    again = merger.merge(batch())
    assert kinds(again) == {"ResidentRecord": 2, "EventRow": 4, "UnlinkedRecord": 1}
    assert residents_in(again) == residents_in(first)


def test_a_crash_before_commit_rebuilds_the_same_residents(store: PartitionedResidentStore) -> None:
    first = ResidentMerger(store, MergeContext(REF)).merge(batch())  # never committed
    again = ResidentMerger(store, MergeContext(REF)).merge(batch())
    before = {row["resident_key"]: row for name, row in first if name == "ResidentRecord"}
    after = {row["resident_key"]: row for name, row in again if name == "ResidentRecord"}
    assert set(after) == set(before)
    for key, row in after.items():
        assert row["version"] > before[key]["version"]
        ignore = {"version": 0, "updated_at": NOW}
        assert {**row, **ignore} == {**before[key], **ignore}


def test_a_newer_version_after_commit_emits_the_resident_again(
    store: PartitionedResidentStore,
) -> None:
    merger = ResidentMerger(store, MergeContext(REF))
    (first,) = [row for name, row in merger.merge([syrk()]) if name == "ResidentRecord"]
    merger.commit()
    later = syrk(jzdz="灌云县伊山镇幸福路20号", dzbm=None, gxsj=SYRK["gxsj"] + timedelta(days=1))
    rows = ResidentMerger(store, MergeContext(REF)).merge([later])
    (second,) = [row for name, row in rows if name == "ResidentRecord"]
    assert second["version"] > first["version"]
    assert (second["placement"], second["grid_code"]) == ("address_match", "320723100001002")
    (event,) = [row for name, row in rows if name == "EventRow"]
    assert event["grid_code"] == "320723100001002"


def test_the_merge_keeps_the_placement_the_normaliser_found() -> None:
    event = {**syrk(), "placement": "crosswalk", "grid_code": GRID_3, "community_code": GRID_3[:12]}
    event["address_id"] = "NOT-IN-THE-MAP"  # not looked up again: the event is placed
    resident = resident_of(event)
    assert (resident["placement"], resident["grid_code"], resident["community_code"]) == (
        "crosswalk",
        GRID_3,
        GRID_3[:12],
    )
    # an event that was never placed is placed by the merge from its evidence
    assert resident_of(syrk())["placement"] == "address_id"


# --- civil affairs ------------------------------------------------------------------------


def jzdx(**changes: Any) -> dict[str, Any]:
    """The canonical event of a jzdx row of WANG (the row with ``changes``)."""
    return MAPPERS[("civil", "jzdx")]({**JZDX_ROW, **changes}, KEYER.for_id(WANG_ID), NOW)


def test_civil_assistance_joins_the_police_resident() -> None:
    later = JZDX_ROW["updated_at"]  # after the police gxsj: its phone is the newest
    resident = resident_of(
        syrk(),
        jzdx(),
        jzdx(id=42, jzlx="临时救助", jsrq=date(2026, 1, 31)),  # ended before NOW
        jzdx(id=43, jzlx="特困", jsrq=date(2027, 1, 1)),  # ends after NOW: current
    )
    assert resident["sources"] == ["civil", "police"]
    assert resident["assistance"] == ["低保", "特困"]
    assert resident["phone"] == "13800001111"
    assert resident["field_sources"]["phone"] == f"civil@{later.isoformat()}"
    assert resident["address"] == SYRK["jzdz"].strip()  # police wins the address
    assert resident["name"] == "王芳"


def test_a_soft_deleted_jzdx_row_contributes_nothing() -> None:
    resident = resident_of(syrk(), jzdx(deleted=True, lxdh="13999999999"))
    assert resident["sources"] == ["police"]
    assert resident["assistance"] == []
    assert resident["phone"] != "13999999999"
    undone = resident_of(syrk(), jzdx(), jzdx(deleted=True))  # the same record, deleted later
    assert undone["assistance"] == []


# --- party building -----------------------------------------------------------------------


def member(**changes: Any) -> dict[str, Any]:
    return MAPPERS[("party", "members")]({**MEMBER, **changes}, KEYER.for_id(WANG_ID), NOW)


def test_an_active_member_brings_membership_branch_and_double_report() -> None:
    resident = resident_of(syrk(), member())
    assert resident["sources"] == ["party", "police"]
    assert resident["is_party_member"] is True
    assert resident["party_branch"] == "幸福社区第一党支部"
    assert resident["double_report_community"] == "320723100002"
    assert resident["address"] == SYRK["jzdz"].strip()  # police still wins the address
    assert resident["phone"] == "13912340000"  # the member record is the newest observation


def test_a_member_transferred_out_is_no_longer_a_member() -> None:
    later = MEMBER["updatedAt"] + timedelta(days=1)
    resident = resident_of(syrk(), member(), member(status="转出", updatedAt=later))
    assert resident["is_party_member"] is False
    assert (resident["party_branch"], resident["double_report_community"]) == ("", None)
    assert resident["sources"] == ["party", "police"]  # the party system still knows them


# --- 12345 hotline --------------------------------------------------------------------------


def ticket(**changes: Any) -> dict[str, Any]:
    return MAPPERS[("hotline", "tickets")]({**TICKET, **changes}, KEYER.for_id(WANG_ID), NOW)


def test_tickets_count_for_their_caller_and_their_phone_is_never_the_residents() -> None:
    resident = resident_of(
        syrk(),
        ticket(callerPhone="13611112222"),
        ticket(ticketNo="12345-20261022-000124", status="办结"),
    )
    assert (resident["hotline_tickets"], resident["hotline_open"]) == (2, 1)
    assert resident["sources"] == ["hotline", "police"]
    assert resident["phone"] != "13611112222"


# --- reference reload ------------------------------------------------------------------


def moved_reference(tmp_path: Path, address_id: str, grid_code: str) -> Any:
    """The test map with one building (``address_id``) moved to ``grid_code``."""
    folder = tmp_path / "reference-v2"
    folder.mkdir(parents=True)
    for name in ("grids.csv", "crosswalk.csv"):
        (folder / name).write_bytes((REFERENCE / name).read_bytes())
    lines = (REFERENCE / "addresses.csv").read_text("utf-8").splitlines(keepends=True)
    moved = [
        line.replace(line.split(",")[1], grid_code, 1)
        if line.startswith(f"{address_id},")
        else line
        for line in lines
    ]
    (folder / "addresses.csv").write_text("".join(moved), "utf-8")
    return load_reference(folder)


def test_a_reload_re_places_only_the_residents_of_the_moved_building(
    store: PartitionedResidentStore, tmp_path: Path
) -> None:
    merger = ResidentMerger(store, MergeContext(REF))
    moving = syrk()  # lives at A001 (grid 003)
    staying = syrk(LI_ID, rkbh="R320723000002", gmsfhm=LI_ID, xm="李娜", xb="2",
                   csrq="19800101", dzbm="A002")  # fmt: skip
    for partition in range(4):
        assert merger.ensure_placed(partition) == []  # first sight: marked, nothing to move
    merger.merge([moving, staying])
    merger.commit()
    assert not merger.use_reference(REF)  # the same map: nothing to do
    assert merger.use_reference(moved_reference(tmp_path, "A001", "320723100001002"))
    rows = [row for p in range(4) for row in merger.ensure_placed(p)]
    merger.commit()
    assert [(name, row["resident_key"], row["grid_code"]) for name, row in rows] == [
        ("ResidentRecord", KEYER.for_id(WANG_ID), "320723100001002"),
        ("GridDeparture", KEYER.for_id(WANG_ID), "320723100001003"),  # hidden where it was
    ]
    assert rows[1][1]["version"] == rows[0][1]["version"]
    assert [row for p in range(4) for row in merger.ensure_placed(p)] == []  # done once
    reopened = ResidentMerger(store, MergeContext(moved_reference(tmp_path / "x", "A001",
                                                                  "320723100001002")))  # fmt: skip
    assert [row for p in range(4) for row in reopened.ensure_placed(p)] == []  # it was saved


def test_a_resident_who_moves_is_hidden_in_every_grid_it_left(
    store: PartitionedResidentStore,
) -> None:
    """grid.resident_by_grid keys rows by (grid, resident): each row built departs from
    every grid the resident was stored in before, and never from the one it is in."""
    key = KEYER.for_id(WANG_ID)

    def moved(days: int, **changes: Any) -> list[tuple[Any, ...]]:
        merger = ResidentMerger(store, MergeContext(REF))  # a new process each time
        event = syrk(gxsj=SYRK["gxsj"] + timedelta(days=days), **changes)
        rows = merger.merge([event])
        merger.commit()
        (resident,) = [row for name, row in rows if name == "ResidentRecord"]
        departures = [row for name, row in rows if name == "GridDeparture"]
        for row in departures:
            valid("GridDeparture", row)
            assert (row["resident_key"], row["version"]) == (key, resident["version"])
        return [resident["grid_code"], sorted(map(str, (r["grid_code"] for r in departures)))]

    assert moved(0) == [GRID_3, []]  # A001
    assert moved(1, dzbm="A002") == ["320723100001001", [GRID_3]]
    unplaced = {"dzbm": None, "jzdz": "外省某市某路1号", "zrq": None}
    assert moved(2, **unplaced) == [None, ["320723100001001", GRID_3]]
    assert moved(3) == [GRID_3, ["320723100001001", "None"]]  # back: 003 is not hidden
    assert moved(4, lxdh="13912345678") == [GRID_3, ["320723100001001", "None"]]  # again


def test_assistance_that_reaches_its_end_date_is_dropped_without_a_record(
    store: PartitionedResidentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No record arrives when ``jsrq`` comes: the merge's own index of end dates
    rebuilds the resident that day, once."""
    import gridhub.streams.merge_resident as merge_module

    real_now = merge_module.utc_now()
    ends = (real_now + timedelta(hours=8) + timedelta(days=1)).date()  # tomorrow, China time
    merger = ResidentMerger(store, MergeContext(REF))
    rows = merger.merge([syrk(), jzdx(jzlx="特困", jsrq=ends)])
    merger.commit()
    (resident,) = [row for name, row in rows if name == "ResidentRecord"]
    assert resident["assistance"] == ["特困"]
    partition = store.partition_of(KEYER.for_id(WANG_ID))
    assert merger.expire(partition) == []  # not yet
    monkeypatch.setattr(merge_module, "utc_now", lambda: real_now + timedelta(days=2))
    expired = merger.expire(partition)
    merger.commit()
    assert [(row["resident_key"], row["assistance"]) for _, row in expired] == [
        (KEYER.for_id(WANG_ID), [])
    ]
    assert expired[0][1]["version"] > resident["version"]
    assert merger.expire(partition) == []  # applied once


def test_a_deployment_policy_lets_party_win_the_name() -> None:
    state = ResidentState()
    for event in (syrk(), member(name="王  芳芳")):
        state.apply(event)
    default = build_resident(KEYER.for_id(WANG_ID), state, MergeContext(REF), NOW, 1)
    party_first = MergeContext(REF, policy_with({"identity": ("party:members", "police:syrk")}))
    reordered = build_resident(KEYER.for_id(WANG_ID), state, party_first, NOW, 1)
    assert default["name"] == "王芳" and default["field_sources"]["name"].startswith("police@")
    assert reordered["name"] == "王芳芳" and reordered["field_sources"]["name"].startswith("party@")
    assert any(c.startswith("name:") for c in reordered["conflicts"])  # still flagged


# --- rule 2: records the phone stage links, takes back, or leaves waiting ---------------


def test_a_resident_claims_its_own_phones_once_and_takes_back_one_it_loses(
    store: PartitionedResidentStore,
) -> None:
    merger = ResidentMerger(store, MergeContext(REF))
    merger.merge([syrk()])
    (claim,) = merger.take_claims()
    assert claim == {
        "phone": "051888123456",
        "resident_key": KEYER.for_id(WANG_ID),
        "name": "王芳",
        "present": True,
    }
    merger.commit()
    merger.merge([syrk()])  # a replay: the phone stage knows it already
    assert merger.take_claims() == []
    merger.commit()
    merger.merge([syrk(lxdh="13912345678", gxsj=datetime(2026, 10, 23, 9, 0))])
    claims = {(c["phone"], c["present"]) for c in merger.take_claims()}
    assert claims == {("13912345678", True), ("051888123456", False)}
    merger.commit()
    assert merger.claims_of(store.partition_of(KEYER.for_id(WANG_ID))) == [
        {
            "phone": "13912345678",
            "resident_key": KEYER.for_id(WANG_ID),
            "name": "王芳",
            "present": True,
        }
    ]


def phone_ticket(link: str, key: str | None, **changes: Any) -> dict[str, Any]:
    """A ticket as the phone stage forwards it: to ``key`` (None: its unlinked key)."""
    event = MAPPERS[("hotline", "tickets")](
        {**TICKET, "callerIdCard": None, "callerName": "王先生", **changes}, key, NOW
    )
    if link == "withdraw":
        event["withdraw"] = True
    else:
        event["link_rule"] = link or "none"
    event["why"] = "" if key else "the phone belongs to no known resident"
    return event


def test_a_ticket_linked_by_phone_counts_for_the_resident_until_it_is_taken_back(
    store: PartitionedResidentStore,
) -> None:
    wang = KEYER.for_id(WANG_ID)
    merger = ResidentMerger(store, MergeContext(REF))
    merger.merge([syrk()])
    merger.commit()
    rows = merger.merge([phone_ticket("phone", wang)])
    for name, row in rows:
        valid(name, row)
    residents = residents_in(rows)
    assert residents[wang]["hotline_tickets"] == 1
    # 王先生 linked the ticket; it neither names the resident nor contradicts its name
    assert (residents[wang]["name"], residents[wang]["conflicts"]) == ("王芳", [])
    (event,) = [row for name, row in rows if name == "EventRow"]
    assert (event["resident_key"], event["link_rule"]) == (wang, "phone")
    assert merger.take_claims() == []  # a phone on a linked ticket is never the resident's
    merger.commit()
    rows = merger.merge([phone_ticket("withdraw", wang)])
    assert residents_in(rows)[wang]["hotline_tickets"] == 0
    assert kinds(rows) == {"ResidentRecord": 1}
    merger.commit()


def test_a_ticket_that_links_late_leaves_grid_unlinked(store: PartitionedResidentStore) -> None:
    merger = ResidentMerger(store, MergeContext(REF))
    rows = merger.merge([phone_ticket("", None)])
    (waiting,) = [row for name, row in rows if name == "UnlinkedRecord"]
    assert waiting["is_deleted"] == 0 and waiting["why"] == "the phone belongs to no known resident"
    rows = merger.merge([phone_ticket("withdraw", None)])
    assert kinds(rows) == {"UnlinkedRecord": 1}
    (gone,) = [row for _, row in rows]
    valid("UnlinkedRecord", gone)
    assert gone["is_deleted"] == 1 and gone["source_key"] == waiting["source_key"]
