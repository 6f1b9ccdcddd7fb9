"""Source records become PersonEvents keyed by resident; unusable ones become dead letters.

The path under test is the one the topology runs: ``route`` validates and keys a raw
batch (dead-lettering what cannot go on), then ``decode_record`` + ``MAPPERS`` make the
canonical events of the routed records.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from gridhub.schemas import PersonEvent, decode, encode_dict
from gridhub.streams.canonicalize import MAPPERS, payload_json
from gridhub.streams.identity import ResidentKeyer, load_or_create_key, partition_for
from gridhub.streams.normalize import IdReason
from gridhub.streams.route import (
    Rejected,
    decode_record,
    raw_head,
    resident_key_of,
    route,
    unlinked_key,
)

from tests.cases.police_rows import JQ_ROW, JZDX_ROW, MEMBER, SYRK_ROW, TICKET

SECRET = b"county-320723-test-pseudonym-key"
KEYER = ResidentKeyer(SECRET)
NOW = datetime(2026, 10, 23, 0, 0, tzinfo=UTC)
PARTITIONS = 8
ID18 = "32072319650101123X"

SYRK: dict[str, Any] = dict(SYRK_ROW)
JQ: dict[str, Any] = dict(JQ_ROW)


def syrk_bytes(**changes: Any) -> bytes:
    return encode_dict("SyrkRow", {**SYRK, **changes})


def jq_bytes(**changes: Any) -> bytes:
    return encode_dict("JqRow", {**JQ, **changes})


def events_of(entity: str, records: list[bytes]) -> list[dict[str, Any]]:
    """Route one batch, then canonicalise what was routed (as the merge stage does)."""
    batch = route("police", entity, records, KEYER, PARTITIONS)
    assert batch.dead_letters == []
    out = []
    for records_of, keys_of in batch.routed.values():
        for raw, key in zip(records_of, keys_of, strict=True):
            data = decode_record(entity, raw, validate=False)
            out.append(MAPPERS[("police", entity)](data, None if key.startswith("u") else key, NOW))
    return out


def dead_letters_of(entity: str, records: list[bytes]) -> list[dict[str, Any]]:
    batch = route("police", entity, records, KEYER, PARTITIONS)
    assert batch.routed == {}
    letters = []
    for raw in batch.dead_letters:
        name, letter = decode(raw)
        assert name == "DeadLetter"
        letters.append(letter)
    return letters


def test_a_valid_syrk_row_becomes_a_person_event() -> None:
    (event,) = events_of("syrk", [syrk_bytes()])
    PersonEvent.model_validate(event)
    encode_dict("PersonEvent", event)
    assert event["resident_key"] == KEYER.for_id(ID18)
    assert event["id_number"] == ID18  # lower-case x upper-cased
    assert event["link_rule"] == "id_number"
    assert (event["source"], event["entity"], event["source_key"]) == (
        "police",
        "syrk",
        "R320723000001",
    )
    assert event["event_time"] == datetime(2026, 10, 22, 1, 30, 5, tzinfo=UTC)  # China time
    assert event["ingested_at"] == NOW
    assert event["name"] == "王芳"
    assert event["gender"] is None  # xb = 9 is no value
    assert event["birth_date"] == date(1965, 1, 1)
    assert event["phone"] == "13912345678"
    assert event["phone_time"] == event["event_time"]
    assert event["address"] == "灌云县伊山镇幸福路18号幸福家园3栋"
    assert event["address_id"] == "A001"
    assert (event["area_system"], event["area_code"]) == ("police", "320723510000-03")
    assert event["attributes"] == {
        "population_type": "流动",
        "deregistered": "1",
        "gender_code": "9",
    }
    assert json.loads(event["payload"])["gmsfhm"] == "32072319650101123x"  # as the source sent it


def test_a_fifteen_digit_id_is_upgraded_to_the_same_resident() -> None:
    (old,) = events_of("syrk", [syrk_bytes(gmsfhm="320723650101123", xb="1")])
    (new,) = events_of("syrk", [syrk_bytes()])
    assert old["id_number"] == ID18
    assert old["resident_key"] == new["resident_key"]
    assert old["gender"] == "男"


@pytest.mark.parametrize(
    "csrq",
    [
        "19650231",
        "00000000",
        pytest.param(
            "1965013",
        ),
        "196511",
    ],
)
def test_an_impossible_or_malformed_csrq_yields_to_the_id_date(csrq: str) -> None:
    (event,) = events_of("syrk", [syrk_bytes(gmsfhm="320723196511171237", csrq=csrq)])
    assert event["birth_date"] == date(1965, 11, 17)


def test_an_unreachable_phone_has_no_time() -> None:
    (event,) = events_of("syrk", [syrk_bytes(lxdh="139****5678")])
    assert event["phone"] is None and event["phone_time"] is None


def test_an_incident_without_identity_stays_unlinked() -> None:
    (event,) = events_of("jq", [jq_bytes()])
    PersonEvent.model_validate(event)
    assert event["resident_key"] is None and event["link_rule"] == "none"
    assert event["phone"] is None  # masked
    assert (event["lng"], event["lat"]) == (119.239812, 34.283561)
    assert event["attributes"]["reported_at"] == "2026-10-22T13:05:00+00:00"


def test_an_incident_links_by_its_reporters_id() -> None:
    (event,) = events_of("jq", [jq_bytes(bjrsfzh="320723650101123")])
    PersonEvent.model_validate(event)
    assert event["resident_key"] == KEYER.for_id(ID18)
    assert event["gender"] == "男"
    assert event["link_rule"] == "id_number"


@pytest.mark.parametrize(
    ("gmsfhm", "reason"),
    [
        ("320723196501011231", IdReason.CHECK_CHARACTER),
        ("320723196502301238", IdReason.BIRTH_DATE),
        ("320723650230123", IdReason.BIRTH_DATE),
        ("3.20723E+17", IdReason.SCIENTIFIC),
        ("", IdReason.MISSING),
    ],
)
def test_a_person_record_without_a_valid_id_or_phone_is_a_dead_letter(
    gmsfhm: str, reason: IdReason
) -> None:
    raw = syrk_bytes(gmsfhm=gmsfhm, lxdh=None)
    (letter,) = dead_letters_of("syrk", [raw])
    assert letter["reason"] == str(reason)
    assert (letter["source"], letter["entity"], letter["source_key"]) == (
        "police",
        "syrk",
        "R320723000001",
    )
    assert letter["raw"] == raw


def test_records_without_a_valid_id_but_with_a_phone_go_to_the_phone_partition() -> None:
    """Rule 2 is decided by phone: a person record with an invalid ID number and an
    incident without one travel to the partition of ``phones`` of their phone."""
    syrk = syrk_bytes(gmsfhm="320723196501011231", lxdh="139-1234-5678")
    jq = jq_bytes(bjrdh="+86 139 1234 5678")
    batch = route("police", "syrk", [syrk], KEYER, PARTITIONS)
    assert batch.routed == {} and batch.dead_letters == []
    assert batch.by_phone == {partition_for("13912345678", PARTITIONS): ([syrk], ["13912345678"])}
    batch = route("police", "jq", [jq], KEYER, PARTITIONS)
    assert list(batch.by_phone.values()) == [([jq], ["13912345678"])]
    assert batch.parts == 1


def test_an_incident_with_an_invalid_reporter_id_is_unlinked_not_dead() -> None:
    (event,) = events_of("jq", [jq_bytes(bjrsfzh="320723196501011231")])
    assert event["resident_key"] is None


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe binary junk", b"not json at all", b"\x00\x00\x00\x00\x07truncated"]
)
def test_a_record_that_is_neither_avro_nor_json_is_a_dead_letter(raw: bytes) -> None:
    (letter,) = dead_letters_of("syrk", [raw])
    assert letter["raw"] == raw
    assert letter["reason"].startswith(("record is neither Avro nor JSON", "undecodable record"))


def test_a_json_record_that_fails_its_model_is_a_dead_letter() -> None:
    raw = json.dumps({**SYRK, "xb": "3", "gxsj": "2026-10-22T09:30:05"}).encode()
    (letter,) = dead_letters_of("syrk", [raw])
    assert letter["reason"].startswith("SyrkRow xb:")
    assert letter["source_key"] == "R320723000001"


def test_a_json_fallback_record_is_accepted_like_avro() -> None:
    raw = json.dumps({**SYRK, "gxsj": "2026-10-22T09:30:05"}).encode()
    (from_json,) = events_of("syrk", [raw])
    (from_avro,) = events_of("syrk", [syrk_bytes()])
    for field in ("resident_key", "id_number", "event_time", "name", "phone", "birth_date"):
        assert from_json[field] == from_avro[field], field


def test_one_batch_splits_into_routed_records_and_dead_letters() -> None:
    bad_id = syrk_bytes(gmsfhm="320723196501011231")
    records = [syrk_bytes(), bad_id, syrk_bytes(gmsfhm="320723196501011231", lxdh=None), b"junk"]
    batch = route("police", "syrk", records, KEYER, PARTITIONS)
    assert sum(len(r) for r, _ in batch.routed.values()) == 1
    assert [r for r, _ in batch.by_phone.values()] == [[bad_id]]  # rule 2 may still link it
    assert len(batch.dead_letters) == 2
    assert batch.parts == len(batch.routed) + len(batch.by_phone) + 1


def test_a_residents_partition_is_stable() -> None:
    spellings = [
        "32072319650101123X",
        "32072319650101123x",
        "320723650101123",
        " 320723 19650101 123x",
    ]
    keys = {resident_key_of("syrk", {"gmsfhm": s}, KEYER) for s in spellings}
    (key,) = keys
    assert key is not None
    assert key == ResidentKeyer(SECRET).for_id(ID18)  # same secret, same key, any process
    partition = partition_for(key, PARTITIONS)
    for records in ([syrk_bytes()], [syrk_bytes(gmsfhm="320723650101123", rkbh="R2")]):
        batch = route("police", "syrk", records, KEYER, PARTITIONS)
        assert list(batch.routed) == [partition]
    # a linked incident of the resident lands on the resident's partition too
    incident = route("police", "jq", [jq_bytes(bjrsfzh=ID18)], KEYER, PARTITIONS)
    assert list(incident.routed) == [partition]


def test_unlinked_records_spread_by_their_own_key() -> None:
    first = unlinked_key("police", "jq", "J1")
    assert first == unlinked_key("police", "jq", "J1")
    assert first != unlinked_key("police", "jq", "J2")
    batch = route("police", "jq", [jq_bytes(jqbh="J1")], KEYER, PARTITIONS)
    assert batch.routed == {partition_for(first, PARTITIONS): ([jq_bytes(jqbh="J1")], [first])}


def test_keys_depend_on_the_deployment_secret() -> None:
    other = ResidentKeyer(b"another-county-secret-key-000000")
    assert other.for_id(ID18) != KEYER.for_id(ID18)
    assert len(KEYER.for_id(ID18)) == 32
    with pytest.raises(ValueError, match="16 bytes"):
        ResidentKeyer(b"short")


def test_the_pseudonym_key_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert load_or_create_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600


def test_payload_json_writes_values_as_the_database_prints_them() -> None:
    record = {"xm": "王芳", "gxsj": datetime(2026, 10, 22, 9, 30, 5), "jd": Decimal("119.21")}
    text = payload_json(record)
    assert "王芳" in text  # readable, not \u-escaped
    assert json.loads(text) == {"xm": "王芳", "gxsj": "2026-10-22 09:30:05", "jd": "119.21"}


# --- civil affairs: jzdx ----------------------------------------------------------------


def jzdx_bytes(**changes: Any) -> bytes:
    return encode_dict("JzdxRow", {**JZDX_ROW, **changes})


def test_a_jzdx_row_becomes_a_person_event_of_its_recipient() -> None:
    batch = route("civil", "jzdx", [jzdx_bytes()], KEYER, PARTITIONS)
    assert batch.dead_letters == []
    ((records, keys),) = batch.routed.values()
    assert keys == [KEYER.for_id(ID18)]  # the same resident as the police row of this ID
    data = decode_record("jzdx", records[0])
    event = MAPPERS[("civil", "jzdx")](data, keys[0], NOW)
    PersonEvent.model_validate(event)
    encode_dict("PersonEvent", event)
    assert (event["source"], event["entity"], event["source_key"]) == ("civil", "jzdx", "41")
    assert event["event_time"] == JZDX_ROW["updated_at"]
    assert event["phone"] == "13800001111"
    assert event["phone_time"] == event["event_time"]  # a timed observation (identity.md)
    assert (event["area_system"], event["area_code"]) == ("civil", "320723100001")
    assert event["attributes"] == {
        "assistance_type": "低保",
        "deleted": "0",
        "start": "2025-01-01",
        "end": "",
        "amount": "650.00",
    }
    assert json.loads(event["payload"])["bzje"] == "650.00"


def test_a_jzdx_row_without_a_valid_id_is_a_dead_letter_and_a_deleted_one_travels() -> None:
    batch = route("civil", "jzdx", [jzdx_bytes(sfzh="3.20723E+17", lxdh=None)], KEYER, PARTITIONS)
    (letter,) = [decode(raw)[1] for raw in batch.dead_letters]
    assert (letter["entity"], letter["source_key"]) == ("jzdx", "41")
    assert letter["reason"]
    deleted = route("civil", "jzdx", [jzdx_bytes(deleted=True)], KEYER, PARTITIONS)
    ((records, keys),) = deleted.routed.values()
    event = MAPPERS[("civil", "jzdx")](decode_record("jzdx", records[0]), keys[0], NOW)
    assert event["attributes"]["deleted"] == "1"


# --- party building: members ------------------------------------------------------------


def test_a_party_member_becomes_a_person_event_of_the_same_resident() -> None:
    batch = route("party", "members", [encode_dict("PartyMember", MEMBER)], KEYER, PARTITIONS)
    ((records, keys),) = batch.routed.values()
    assert keys == [KEYER.for_id(ID18)]  # spaces and a lower-case x: the same person
    event = MAPPERS[("party", "members")](decode_record("members", records[0]), keys[0], NOW)
    PersonEvent.model_validate(event)
    encode_dict("PersonEvent", event)
    assert (event["name"], event["gender"], event["phone"]) == ("王芳", "女", "13912340000")
    assert (event["area_system"], event["area_code"]) == ("party", "DJ-320723100001-02")
    assert event["attributes"]["status"] == "在册"
    assert event["attributes"]["report_community"] == "320723100002"
    json_member = json.dumps({**MEMBER, "gender": "X"}, default=str).encode()
    refused = route("party", "members", [json_member], KEYER, PARTITIONS)
    (letter,) = [decode(raw)[1] for raw in refused.dead_letters]
    assert "gender" in letter["reason"]
    assert letter["source_key"] == "M0012345"


# --- 12345 hotline: tickets -------------------------------------------------------------


def test_a_ticket_links_by_the_callers_id_and_never_by_a_masked_phone() -> None:
    batch = route("hotline", "tickets", [encode_dict("HotlineTicket", TICKET)], KEYER, PARTITIONS)
    ((records, keys),) = batch.routed.values()
    assert keys == [KEYER.for_id(ID18)]
    event = MAPPERS[("hotline", "tickets")](decode_record("tickets", records[0]), keys[0], NOW)
    PersonEvent.model_validate(event)
    assert (event["link_rule"], event["id_number"], event["phone"]) == ("id_number", ID18, None)
    assert event["event_time"] == datetime(2025, 10, 23, 3, 26, 40, tzinfo=UTC)
    assert event["attributes"]["open"] == "1"
    anonymous = {**TICKET, "callerIdCard": None, "callerName": "匿名", "status": "办结"}
    batch = route(
        "hotline", "tickets", [encode_dict("HotlineTicket", anonymous)], KEYER, PARTITIONS
    )
    ((records, keys),) = batch.routed.values()
    assert keys[0].startswith("u")  # unlinked, not a dead letter: tickets count where placed
    unlinked = MAPPERS[("hotline", "tickets")](decode_record("tickets", records[0]), None, NOW)
    assert (unlinked["link_rule"], unlinked["name"]) == ("none", None)
    assert unlinked["attributes"]["open"] == "0"


# --- the raw topics' three shapes (the ingest contract) ---------------------------------

RAW = "gridhub.raw.police.syrk"


def test_a_raw_message_is_an_envelope_one_avro_record_or_json_with_its_header() -> None:
    envelope = encode_dict(
        "Envelope",
        {
            "source": "police",
            "entity": "syrk",
            "seq": 4,
            "cursor": "{}",
            "produced_at": NOW,
            "records": [syrk_bytes()],
        },
    )
    assert raw_head(RAW, "gridhub", envelope, {}, 99)["seq"] == 4
    single = raw_head(RAW, "gridhub", syrk_bytes(), {}, 99)
    assert (single["source"], single["entity"], single["seq"]) == ("police", "syrk", 99)
    assert single["records"] == [syrk_bytes()]
    as_json = json.dumps({**SYRK, "gxsj": "2026-10-22T09:30:05"}).encode()
    headers = {"content-type": b"application/json; charset=utf-8"}
    assert raw_head(RAW, "gridhub", as_json, headers, 99)["records"] == [as_json]
    (event,) = events_of("syrk", raw_head(RAW, "gridhub", as_json, headers, 99)["records"])
    assert event["resident_key"] == KEYER.for_id(ID18)


@pytest.mark.parametrize(
    ("topic", "value", "headers", "reason"),
    [
        (RAW, b'{"rkbh": "R1"}', {}, "content-type: application/json"),
        (RAW, b"\x00\x00\x00\x00\x07junk", {}, "does not decode"),
        (RAW, jq_bytes(), {}, "JqRow record was sent to gridhub.raw.police.syrk"),
        ("gridhub.raw.police.cars", syrk_bytes(), {}, "not a raw topic"),
    ],
)
def test_a_raw_message_of_no_known_shape_is_refused_with_the_reason(
    topic: str, value: bytes, headers: dict[str, bytes], reason: str
) -> None:
    with pytest.raises(Rejected, match=re.escape(reason)):
        raw_head(topic, "gridhub", value, headers, 99)
