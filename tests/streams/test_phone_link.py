"""Stage 1b: identity.md rule 2 against the phone index's RocksDB state."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gridhub.streams.phone_link import (
    LINK_PHONE,
    WHY_NAME,
    WHY_NO_RESIDENT,
    WITHDRAW,
    PhoneIndex,
    PhoneOutput,
    PhoneStore,
    decide,
    name_fits,
    why_shared,
)
from gridhub.streams.route import unlinked_key
from hypothesis import given, settings
from hypothesis import strategies as st

PHONE = "13912345678"
WANG, WANG_WIFE, LI = "r-wang", "r-wang-wife", "r-li"


def ticket(key: str = "T1", name: str | None = "王先生", time: float = 1.0) -> dict[str, Any]:
    return {
        "source": "hotline",
        "entity": "tickets",
        "source_key": key,
        "event_time": time,
        "name": name,
    }


def syrk_without_id(name: str = "王伟") -> dict[str, Any]:
    return {
        "source": "police",
        "entity": "syrk",
        "source_key": "R1",
        "event_time": 1.0,
        "name": name,
        "id_reason": "公民身份号码校验位错误 (ID number check character is wrong)",
    }


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PhoneIndex]:
    store = PhoneStore(tmp_path / "phones", 4)
    yield PhoneIndex(store)
    store.close()


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_name", "name", "fits"),
    [
        ("王伟", "王伟", True),
        ("王 伟", "王伟", True),  # normalised first
        ("王先生", "王伟", True),
        ("王女士", "王伟", True),  # identity.md asks nothing of the title's gender
        ("李先生", "王伟", False),
        ("欧阳先生", "欧阳修", True),  # a two-character surname
        ("王芳", "王伟", False),
        ("", "王伟", False),
        (None, "王伟", False),
        ("先生", "王伟", False),
    ],
)
def test_a_name_contradicts_unless_equal_or_only_the_surname_and_title(
    record_name: str | None, name: str, fits: bool
) -> None:
    assert name_fits(record_name, name) is fits


# --- decisions ----------------------------------------------------------------------------


def test_a_phone_of_one_resident_links_a_wang_xiansheng_ticket() -> None:
    decision = decide({WANG: "王伟"}, ticket())
    assert (decision.to, decision.rule) == (WANG, LINK_PHONE)


def test_a_phone_shared_by_a_household_links_no_one() -> None:
    decision = decide({WANG: "王伟", WANG_WIFE: "张丽"}, ticket(name="王伟"))
    assert decision.to == unlinked_key("hotline", "tickets", "T1")
    assert decision.why == why_shared(2)


def test_a_phone_nobody_has_and_a_contradicting_name_leave_the_ticket_unlinked() -> None:
    assert decide({}, ticket()).why == WHY_NO_RESIDENT
    assert decide({WANG: "王伟"}, ticket(name="李女士")).why == WHY_NAME


def test_a_person_record_no_resident_takes_has_no_unlinked_key() -> None:
    assert decide({}, syrk_without_id()).to is None
    assert decide({WANG: "王伟"}, syrk_without_id()).to == WANG


# --- the index ------------------------------------------------------------------------------


def test_a_ticket_before_its_resident_links_late(index: PhoneIndex) -> None:
    out = PhoneOutput()
    index.add_record(PHONE, ticket(), b"t1", out)
    waiting = unlinked_key("hotline", "tickets", "T1")
    assert [(f.key, f.link, f.why, f.again) for f in out.forwards] == [
        (waiting, "", WHY_NO_RESIDENT, False)
    ]
    index.commit()
    out = PhoneOutput()
    index.claim(PHONE, WANG, "王伟", True, out)
    assert [(f.key, f.link) for f in out.forwards] == [(waiting, WITHDRAW), (WANG, LINK_PHONE)]
    assert all(f.again for f in out.forwards)  # not new source data: freshness leaves it out


def test_a_second_resident_on_the_phone_takes_the_link_back(index: PhoneIndex) -> None:
    out = PhoneOutput()
    index.claim(PHONE, WANG, "王伟", True, out)
    index.add_record(PHONE, ticket(), b"t1", out)
    index.commit()
    out = PhoneOutput()
    index.claim(PHONE, WANG_WIFE, "张丽", True, out)
    waiting = unlinked_key("hotline", "tickets", "T1")
    assert [(f.key, f.link, f.why) for f in out.forwards] == [
        (WANG, WITHDRAW, ""),
        (waiting, "", why_shared(2)),
    ]


def test_one_batch_sends_only_the_last_copy_of_a_record_to_a_key(index: PhoneIndex) -> None:
    """A link made and undone within one batch: the unlinked row must not be written
    deleted and live at the same time (the store could not tell which came last)."""
    out = PhoneOutput()
    index.add_record(PHONE, ticket(), b"t1", out)
    index.commit()
    out = PhoneOutput()
    index.claim(PHONE, WANG, "王伟", True, out)
    index.claim(PHONE, WANG_WIFE, "张丽", True, out)
    waiting = unlinked_key("hotline", "tickets", "T1")
    assert sorted((f.key, f.link) for f in out.forwards) == sorted(
        [(WANG, WITHDRAW), (waiting, "")]
    )


def test_a_claim_that_changes_nothing_sends_nothing(index: PhoneIndex) -> None:
    out = PhoneOutput()
    index.claim(PHONE, WANG, "王伟", True, out)
    index.add_record(PHONE, ticket(), b"t1", out)
    again = PhoneOutput()
    index.claim(PHONE, WANG, "王伟", True, again)
    index.claim(PHONE, LI, "", False, again)  # never claimed: nothing to take back
    assert again.forwards == [] and again.letters == []


def test_a_person_record_is_a_dead_letter_and_links_when_a_resident_appears(
    index: PhoneIndex,
) -> None:
    out = PhoneOutput()
    index.add_record(PHONE, syrk_without_id(), b"s1", out)
    assert out.forwards == []
    (letter,) = out.letters
    assert letter.reason.startswith("公民身份号码校验位错误") and WHY_NO_RESIDENT in letter.reason
    index.commit()
    again = PhoneOutput()  # a replay (the letter may have been lost with the broker)
    index.add_record(PHONE, syrk_without_id(), b"s1", again)
    assert again.letters == [letter]  # the same raw bytes: grid.dead_letters keeps one row
    out = PhoneOutput()
    index.claim(PHONE, WANG, "王伟", True, out)
    assert [(f.key, f.link) for f in out.forwards] == [(WANG, LINK_PHONE)]
    assert out.letters == []


def test_an_older_version_is_ignored_and_state_survives_a_reopen(tmp_path: Path) -> None:
    store = PhoneStore(tmp_path / "phones", 4)
    index = PhoneIndex(store)
    out = PhoneOutput()
    index.claim(PHONE, WANG, "王伟", True, out)
    index.add_record(PHONE, ticket(time=2.0), b"new", out)
    index.commit()
    store.close()
    store = PhoneStore(tmp_path / "phones", 4)
    index = PhoneIndex(store)
    out = PhoneOutput()
    index.add_record(PHONE, ticket(time=1.0), b"old", out)
    assert out.forwards == []
    index.resend(PHONE, out)
    assert [(f.key, f.link, f.raw) for f in out.forwards] == [(WANG, LINK_PHONE, b"new")]
    store.close()


# --- any order, duplicates and replays: the same destinations ------------------------------

CLAIMS = [
    (PHONE, WANG, "王伟", True),
    (PHONE, WANG_WIFE, "张丽", True),
    (PHONE, WANG_WIFE, "", False),
    ("13800000000", LI, "李娜", True),
]
RECORDS = [
    (PHONE, ticket("T1", "王先生")),
    (PHONE, ticket("T2", "张女士")),
    (PHONE, syrk_without_id()),
    ("13800000000", ticket("T3", "李娜")),
    ("13800000000", ticket("T4", "王先生")),
]


def final_claims(steps: list[tuple[str, int]]) -> dict[str, dict[str, str]]:
    """The claims each phone holds once every step is applied: per (phone, resident)
    the last claim step about it."""
    last: dict[tuple[str, str], tuple[str, str, str, bool]] = {}
    for kind, i in steps:
        if kind == "claim":
            claim = CLAIMS[i]
            last[(claim[0], claim[1])] = claim
    out: dict[str, dict[str, str]] = {}
    for (phone, resident), (_, _, name, present) in last.items():
        if present:
            out.setdefault(phone, {})[resident] = name
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("claim"), st.integers(0, len(CLAIMS) - 1)),
            st.tuples(st.just("record"), st.integers(0, len(RECORDS) - 1)),
            st.tuples(st.just("commit"), st.just(0)),
        ),
        max_size=30,
    )
)
def test_any_order_of_records_and_claims_ends_where_the_final_claims_point(
    steps: list[tuple[str, int]],
) -> None:
    """Replaying every copy the index sent, in order, each record is present exactly
    where :func:`decide` puts it against the claims that hold in the end; person
    records no resident takes are present nowhere."""
    with tempfile.TemporaryDirectory() as directory:
        store = PhoneStore(Path(directory), 2)
        index = PhoneIndex(store)
        present: dict[tuple[str, str], bool] = {}
        seen: set[int] = set()
        for kind, i in steps:
            out = PhoneOutput()
            if kind == "claim":
                phone, resident, name, flag = CLAIMS[i]
                index.claim(phone, resident, name, flag, out)
            elif kind == "record":
                phone, record = RECORDS[i]
                index.add_record(phone, record, record["source_key"].encode(), out)
                seen.add(i)
            else:
                index.commit()
            for forward in out.forwards:
                present[(forward.key, forward.raw.decode())] = forward.link != WITHDRAW
        claims = final_claims(steps)
        for i in seen:
            phone, record = RECORDS[i]
            want = decide(claims.get(phone, {}), record).to
            where = {
                key for (key, rid), here in present.items() if here and rid == record["source_key"]
            }
            assert where == ({want} if want else set()), record["source_key"]
        store.close()
