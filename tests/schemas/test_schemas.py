"""Models and Avro schemas agree, round-trip, and reject what the spec rules out."""

import json
import shutil
import struct
import types
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from gridhub.schemas import (
    ENTITY_MODELS,
    MODELS,
    AreaEvent,
    AreaRecord,
    BatchAck,
    DeadLetter,
    DisabilitySubsidyRow,
    ElderlyAllowanceRow,
    Envelope,
    EventRow,
    GridDeparture,
    HotlineTicket,
    JqRow,
    JzdxRow,
    LocalSchemaRegistry,
    PartyActivity,
    PartyMember,
    PersonEvent,
    PhoneClaim,
    ResidentRecord,
    RosterEdition,
    RowBatch,
    SchemaError,
    SyrkRow,
    UnlinkedRecord,
    decode,
    decode_model,
    default_registry,
    encode,
    encode_dict,
)
from gridhub.schemas.common import ENTITY_SOURCE, LONG_MAX, LONG_MIN, to_utc_millis
from gridhub.schemas.registry import DEFAULT_DIRECTORY
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, AwareDatetime, BaseModel, NaiveDatetime, ValidationError

CST = timezone(timedelta(hours=8))
REGISTRY = default_registry()

# --- what the sources send, nasty cases included -----------------------------

PARTY_MEMBER = {
    "memberId": "M0012345",
    "idCard": " 32072319800101123x ",
    "name": "买买提·艾力　",
    "gender": "男",
    "birthDate": "1980-01-01",
    "mobile": "+86-139-1234-5678",
    "branchCode": "B001",
    "branchName": "幸福社区第一党支部",
    "partyGridCode": "DJ-320723100001-02",
    "memberType": "预备党员",
    "joinDate": "2025-07-01",
    "status": "在册",
    "reportCommunityCode": None,
    "residenceAddress": "伊山镇幸福家园3号楼二单元",
    "updatedAt": "2026-10-22T09:30:00.123456+08:00",
}
PARTY_ACTIVITY = {
    "activityId": "A0000001",
    "memberId": "M0012345",
    "kind": "双报到服务",
    "hours": 1.5,
    "partyGridCode": "DJ-320723100001-02",
    "occurredAt": "2026-10-20T14:00:00+08:00",
    "updatedAt": "2026-10-21T08:00:00+08:00",
}
SYRK = {
    "rkbh": "R320723000001",
    "gmsfhm": "320723800101123",
    "xm": "王　芳",
    "xb": "9",
    "csrq": "19800101",
    "lxdh": "0518-88123456",
    "hjdz": None,
    "jzdz": "灌云县伊山镇幸福路18号幸福家园3栋",
    "dzbm": None,
    "rylb": "02",
    "zrq": "320723510000-03",
    "zxbz": "1",
    "gxsj": datetime(2026, 10, 22, 9, 30, 5),
}
JQ = {
    "jqbh": "J3207232026102200001",
    "bjsj": datetime(2026, 10, 22, 21, 5, 0),
    "jqlb": "04",
    "jqlbmc": "纠纷",
    "fadz": "幸福路18号附近",
    "zrq": "320723510000-03",
    "jd": Decimal("119.239812"),
    "wd": Decimal("34.283561"),
    "bjrxm": "李先生",
    "bjrdh": "139****5678",
    "bjrsfzh": "32072319800101123x",
    "jqzt": "已处警",
    "gxsj": datetime(2026, 10, 22, 21, 40, 0),
}
JZDX = {
    "id": 17,
    "sfzh": "32072319451001002X",
    "xm": "张桂英",
    "jzlx": "特困",
    "jtrk": 1,
    "bzje": Decimal("980.50"),
    "ksrq": date(2024, 1, 1),
    "jsrq": None,
    "sqdm": "320723100001",
    "jtzz": "幸福家园小区三栋302室",
    "lxdh": None,
    "hzsfzh": None,
    "deleted": True,
    "updated_at": datetime(2026, 10, 22, 9, 30, 5, 123456, tzinfo=CST),
}
ELDERLY = {
    "file_name": "高龄津贴_202610.csv",
    "month": "202610",
    "seq": "12",
    "name": "刘　秀兰",
    "id_number": "3.20723E+17",
    "gender": "女",
    "age": "86",
    "community_name": "幸福社区",
    "community_code": "320723100001",
    "amount": "300.00",
    "phone": "",
    "remark": None,
}
DISABILITY = {
    "file_name": "残疾人两项补贴_202610.xlsx",
    "month": "202610",
    "file_time": datetime(2026, 10, 30, 17, 0, tzinfo=CST),
    "seq": 3,
    "name": "赵四",
    "id_number": "32072319900101123x",
    "disability_category": "多重",
    "disability_level": "一级",
    "community_code": "320723100001",
    "address": "幸福路18号3幢",
    "amount": 215.5,
}
TICKET = {
    "ticketNo": "12345-20261022-000123",
    "createTime": 1761100000000,
    "updateTime": 1761100300000,
    "callerName": "匿名",
    "callerPhone": "139****5678",
    "callerIdCard": None,
    "address": "伊山镇幸福家园3号楼二单元",
    "lng": None,
    "lat": None,
    "category": "社会保障",
    "subcategory": "低保",
    "content": "咨询低保申请流程",
    "status": "退单",
    "handleDept": None,
    "deadline": None,
    "finishTime": None,
    "satisfaction": None,
    "urgent": 0,
}
EVENT_TIME = datetime(2026, 10, 22, 1, 30, 0, 123000, tzinfo=UTC)
PERSON_EVENT = {
    "source": "police",
    "entity": "syrk",
    "source_key": "R320723000001",
    "event_time": EVENT_TIME,
    "ingested_at": EVENT_TIME + timedelta(seconds=3),
    "resident_key": "rk_9f2c",
    "id_number": "32072319800101123X",
    "link_rule": "id_number",
    "name": "王芳",
    "gender": "女",
    "birth_date": date(1980, 1, 1),
    "phone": "051888123456",
    "phone_time": EVENT_TIME,
    "address": "灌云县伊山镇幸福路18号幸福家园3栋",
    "address_id": "A-0001",
    "area_system": "police",
    "area_code": "320723510000-03",
    "lng": 119.239812,
    "lat": 34.283561,
    "attributes": {"population_type": "流动", "deregistered": "1"},
    "payload": '{"rkbh": "R320723000001"}',
}
RESIDENT = {
    "resident_key": "rk_9f2c",
    "id_number": "32072319800101123X",
    "name": "王芳",
    "gender": "女",
    "birth_date": date(1980, 1, 1),
    "phone": "13912345678",
    "grid_code": "320723100001003",
    "community_code": "320723100001",
    "address": "灌云县伊山镇幸福路18号幸福家园3栋",
    "placement": "address_id",
    "population_type": "流动",
    "deregistered": False,
    "is_party_member": True,
    "party_branch": "幸福社区第一党支部",
    "double_report_community": "320723100001",
    "assistance": ["低保", "高龄津贴"],
    "hotline_tickets": 3,
    "hotline_open": 1,
    "incidents": 0,
    "sources": ["police", "party", "civil"],
    "field_sources": {"name": "police@2026-10-22T01:30:05Z"},
    "conflicts": ["name: police 王芳 / party 王 芳"],
    "version": 2**63 - 1,
    "updated_at": EVENT_TIME,
}
AREA = {
    "grid_code": "320723100001003",
    "grid_name": "幸福社区第三网格",
    "community_code": "320723100001",
    "street_code": "320723100",
    "residents": 812,
    "floating_population": 97,
    "deregistered": 12,
    "party_members": 41,
    "double_report_members": 9,
    "assistance_recipients": 23,
    "elderly_80_plus": 30,
    "hotline_tickets_30d": 14,
    "hotline_open": 5,
    "incidents_30d": 2,
    "volunteer_hours_30d": 37.5,
    "unplaced_nearby": 4,
    "updated_at": EVENT_TIME,
}
EVENT_ROW = {
    "source": "hotline",
    "entity": "tickets",
    "source_key": "12345-20261022-000123",
    "event_time": EVENT_TIME,
    "ingested_at": EVENT_TIME,
    "resident_key": None,
    "grid_code": None,
    "payload": json.dumps(TICKET, ensure_ascii=False),
}
DEAD_LETTER = {
    "source": "civil",
    "entity": "roster_elderly",
    "reason": "invalid id number: spreadsheet-mangled 3.20723E+17",
    "raw": "12,刘秀兰,3.20723E+17".encode("gbk") + b"\xff\x00",
    "received_at": EVENT_TIME,
}
UNLINKED = {
    "source": "hotline",
    "entity": "tickets",
    "source_key": "12345-20261022-000123",
    "event_time": EVENT_TIME,
    "why": "masked phone, no id number",
    "grid_code": None,
    "community_code": "320723100001",
    "payload": "{}",
    "updated_at": EVENT_TIME,
}

SOURCE_CASES: list[BaseModel] = [
    PartyMember.model_validate(PARTY_MEMBER),
    PartyMember.model_validate(
        {**PARTY_MEMBER, "mobile": "", "reportCommunityCode": "320723100001"}
    ),
    PartyActivity.model_validate(PARTY_ACTIVITY),
    PartyActivity.model_validate({**PARTY_ACTIVITY, "hours": 0}),
    SyrkRow.model_validate(SYRK),
    SyrkRow.model_validate({**SYRK, "gmsfhm": "32072319800101123x", "xb": "2", "lxdh": None}),
    JqRow.model_validate(JQ),
    JqRow.model_validate({**JQ, "jd": None, "wd": None, "bjrxm": None, "bjrdh": None}),
    JzdxRow.model_validate(JZDX),
    JzdxRow.model_validate({**JZDX, "jsrq": date(2026, 6, 30), "lxdh": "139 1234 5678"}),
    ElderlyAllowanceRow.model_validate(ELDERLY),
    DisabilitySubsidyRow.model_validate(DISABILITY),
    DisabilitySubsidyRow.model_validate({**DISABILITY, "file_sha256": "0" * 64}),
    RosterEdition.model_validate(
        {
            "allowance": "高龄津贴",
            "file_name": "高龄津贴_202610.csv",
            "month": "202610",
            "file_time": datetime(2026, 10, 30, 17, 0, tzinfo=CST),
            "file_sha256": "ab" * 32,
            "rows": 1200,
            "rejected": 3,
        }
    ),
    HotlineTicket.model_validate(TICKET),
    HotlineTicket.model_validate(
        {
            **TICKET,
            "callerName": "王先生",
            "callerPhone": "13912345678",
            "callerIdCard": " 320723800101123 ",
            "lng": 119.2398,
            "lat": 34,
            "status": "回访",
            "handleDept": "县住建局",
            "deadline": 1761359500000,
            "finishTime": 1761200000000,
            "satisfaction": "基本满意",
            "urgent": 1,
        }
    ),
]
HUB_CASES: list[BaseModel] = [
    PersonEvent.model_validate(PERSON_EVENT),
    AreaEvent(
        source="party",
        entity="activities",
        source_key="A0000001",
        kind="activity",
        event_time=EVENT_TIME,
        occurred_at=EVENT_TIME,
        ingested_at=EVENT_TIME,
        area_system="party",
        area_code="DJ-320723100001-02",
        hours=1.5,
        payload='{"activityId": "A0000001", "hours": 1.5}',
    ),
    PersonEvent(
        source="hotline",
        entity="tickets",
        source_key="12345-20261022-000123",
        event_time=EVENT_TIME,
        ingested_at=EVENT_TIME,
        link_rule="none",
        attributes={},
        payload="{}",
    ),
    ResidentRecord.model_validate(RESIDENT),
    ResidentRecord.model_validate(
        {
            **RESIDENT,
            "id_number": None,
            "gender": "",
            "birth_date": None,
            "phone": None,
            "grid_code": None,
            "community_code": None,
            "placement": "unplaced",
            "population_type": "",
            "double_report_community": None,
            "assistance": [],
            "field_sources": {},
            "conflicts": [],
            "version": 0,
        }
    ),
    AreaRecord.model_validate(AREA),
    EventRow.model_validate(EVENT_ROW),
    DeadLetter.model_validate(DEAD_LETTER),
    UnlinkedRecord.model_validate(UNLINKED),
    GridDeparture(resident_key="r1", grid_code="320723100001001", version=7, updated_at=EVENT_TIME),
    GridDeparture(resident_key="r1", grid_code=None, version=8, updated_at=EVENT_TIME),
    BatchAck(source="police", entity="syrk", seq=7, part=1, parts=3),
    PhoneClaim(phone="13912345678", resident_key="r1", name="王芳", present=True),
]
ENVELOPE_CASE = Envelope(
    source="hotline",
    entity="tickets",
    seq=42,
    cursor='{"window_start": 1761100000000, "page": 3}',
    produced_at=EVENT_TIME,
    records=[encode(case) for case in SOURCE_CASES if isinstance(case, HotlineTicket)],
    partition_count=2,
    part=1,
)
ROW_BATCH_CASE = RowBatch(
    produced_at=EVENT_TIME,
    tables=["EventRow"],
    blocks=[b"\x02\x0cpolice\x00"],
    row_counts=[1],
    acks=[encode(BatchAck(source="police", entity="syrk", seq=7, part=1, parts=3))],
)
CASES = [*SOURCE_CASES, *HUB_CASES, ENVELOPE_CASE, ROW_BATCH_CASE]


def _case_id(case: BaseModel) -> str:
    return type(case).__name__


# --- the catalogue ------------------------------------------------------------


def test_every_schema_file_has_a_model_and_every_model_a_schema() -> None:
    stems = {path.stem for path in DEFAULT_DIRECTORY.glob("*.avsc")}
    assert stems == set(REGISTRY.names) == set(MODELS)
    assert all(model.__name__ == name for name, model in MODELS.items())
    assert {type(case).__name__ for case in CASES} == set(MODELS)


def test_every_entity_has_a_source_model() -> None:
    assert set(ENTITY_MODELS) == set(ENTITY_SOURCE)
    assert all(MODELS[model.__name__] is model for model in ENTITY_MODELS.values())


# --- models agree with their Avro schemas, derived by walking both -------------


def _unwrap(annotation: Any, metadata: list[Any]) -> Any:
    """Strip ``Annotated`` layers, collecting their constraints into ``metadata``."""
    while get_origin(annotation) is Annotated:
        base, *extras = get_args(annotation)
        for extra in extras:
            metadata.extend(getattr(extra, "metadata", [extra]))
        annotation = base
    return annotation


def _constraint(metadata: list[Any], name: str) -> Any:
    return next((getattr(m, name) for m in metadata if getattr(m, name, None) is not None), None)


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _expected_avro(annotation: Any, metadata: list[Any]) -> Any:
    """The Avro type a model annotation must be written as."""
    annotation = _unwrap(annotation, metadata)
    origin = get_origin(annotation)
    if _is_union(annotation):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        assert len(members) == 1 and len(get_args(annotation)) == 2, annotation
        return ["null", _expected_avro(members[0], metadata)]
    if origin is Literal:
        (kind,) = {type(value) for value in get_args(annotation)}
        return {str: "string", int: "long"}[kind]
    if origin is list:
        return {"type": "array", "items": _expected_avro(get_args(annotation)[0], [])}
    if origin is dict:
        key, value = get_args(annotation)
        assert key is str
        return {"type": "map", "values": _expected_avro(value, [])}
    if annotation is int:
        low, high = _constraint(metadata, "ge"), _constraint(metadata, "le")
        assert low is not None and high is not None, "ints must be bounded to fit an Avro long"
        assert LONG_MIN <= low <= high <= LONG_MAX
        return "long"
    if annotation is Decimal:
        return {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": _constraint(metadata, "max_digits"),
            "scale": _constraint(metadata, "decimal_places"),
        }
    if annotation is AwareDatetime:
        millis = any(isinstance(m, AfterValidator) and m.func is to_utc_millis for m in metadata)
        return {"type": "long", "logicalType": "timestamp-millis" if millis else "timestamp-micros"}
    if annotation is NaiveDatetime:
        return {"type": "long", "logicalType": "local-timestamp-micros"}
    if annotation is date:
        return {"type": "int", "logicalType": "date"}
    primitives = {str: "string", float: "double", bool: "boolean", bytes: "bytes"}
    assert annotation in primitives, f"no Avro mapping for {annotation!r} (bare datetime?)"
    return primitives[annotation]


def _strip_internal(schema: Any) -> Any:
    """Drop fastavro's bookkeeping keys and docs from a parsed type."""
    if isinstance(schema, dict):
        return {k: _strip_internal(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [_strip_internal(member) for member in schema]
    return schema


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_agrees_with_avro_schema(name: str) -> None:
    model = MODELS[name]
    schema = REGISTRY.by_name(name).schema
    assert isinstance(schema, dict)
    assert schema["name"] == f"gridhub.{name}" and schema.get("doc")
    avro_fields = {field["name"]: field for field in schema["fields"]}
    assert list(avro_fields) == list(model.model_fields)
    for field_name, info in model.model_fields.items():
        avro_field = avro_fields[field_name]
        expected = _expected_avro(info.annotation, list(info.metadata))
        assert _strip_internal(avro_field["type"]) == expected, field_name
        nullable = isinstance(expected, list)
        assert nullable == (not info.is_required() and info.default is None), field_name
        if info.is_required():
            assert "default" not in avro_field, field_name
        else:
            assert avro_field["default"] == info.default, field_name
        assert avro_field.get("doc") and avro_field["doc"] == info.description, field_name


# --- registry and wire format ---------------------------------------------------


def test_schema_ids_are_crc32_of_canonical_form_and_unique() -> None:
    ids = set()
    for name in REGISTRY.names:
        entry = REGISTRY.by_name(name)
        assert entry.schema_id == zlib.crc32(entry.canonical_form.encode()) & 0x7FFFFFFF
        assert entry.header == b"\x00" + struct.pack(">I", entry.schema_id)
        assert REGISTRY.by_id(entry.schema_id) is entry
        ids.add(entry.schema_id)
    assert len(ids) == len(REGISTRY.names)


def test_ids_do_not_move_when_a_schema_is_added(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_DIRECTORY, tmp_path, dirs_exist_ok=True)
    extra = {"type": "record", "name": "Extra", "fields": [{"name": "x", "type": "long"}]}
    (tmp_path / "Extra.avsc").write_text(json.dumps(extra))
    grown = LocalSchemaRegistry(tmp_path)
    assert set(grown.names) == {*REGISTRY.names, "Extra"}
    for name in REGISTRY.names:
        assert grown.by_name(name).schema_id == REGISTRY.by_name(name).schema_id


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"A.avsc": {"type": "record", "name": "B", "fields": []}}, "defines record 'B'"),
        ({"A.avsc": {"type": "enum", "name": "A", "symbols": ["X"]}}, "not a record"),
        ({"A.avsc": {"type": "record", "name": "A", "fields": [{"name": "x"}]}}, "cannot parse"),
    ],
)
def test_registry_refuses_bad_schema_files(
    tmp_path: Path, files: dict[str, Any], message: str
) -> None:
    for file_name, content in files.items():
        (tmp_path / file_name).write_text(json.dumps(content))
    with pytest.raises(SchemaError, match=message):
        LocalSchemaRegistry(tmp_path)


def test_unknown_names_are_schema_errors() -> None:
    with pytest.raises(SchemaError, match="unknown schema name 'Nope'"):
        encode_dict("Nope", {})

    class Stranger(BaseModel):
        x: int

    with pytest.raises(SchemaError, match="unknown schema name 'Stranger'"):
        encode(Stranger(x=1))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_representative_instance_round_trips(case: BaseModel) -> None:
    data = encode(case)
    entry = REGISTRY.by_name(type(case).__name__)
    assert data[0] == 0
    assert int.from_bytes(data[1:5], "big") == entry.schema_id
    assert data.startswith(entry.header)
    name, record = decode(data)
    assert name == type(case).__name__
    assert decode_model(data) == case
    assert encode_dict(name, record) == data


def test_hot_path_dict_encodes_like_the_model() -> None:
    assert encode_dict("SyrkRow", SYRK) == encode(SyrkRow.model_validate(SYRK))
    assert encode_dict("JzdxRow", JZDX) == encode(JzdxRow.model_validate(JZDX))


def test_encoded_aware_times_come_back_in_utc() -> None:
    _, record = decode(encode(PartyMember.model_validate(PARTY_MEMBER)))
    assert record["updatedAt"] == datetime(2026, 10, 22, 1, 30, 0, 123456, tzinfo=UTC)
    assert record["updatedAt"].tzinfo == UTC
    _, row = decode(encode(SyrkRow.model_validate(SYRK)))
    assert row["gxsj"] == SYRK["gxsj"] and row["gxsj"].tzinfo is None


@pytest.mark.parametrize(
    ("schema", "data", "message"),
    [
        ("SyrkRow", {"rkbh": 1}, "rkbh is int, expected string"),
        ("SyrkRow", {**SYRK, "gxsj": None}, "gxsj is missing or None"),
        ("SyrkRow", [SYRK], "expected a dict, got list"),
        ("JqRow", {**JQ, "jd": Decimal("1.2345678")}, "jd: Scale provided in schema"),
    ],
)
def test_encode_dict_names_the_field_it_cannot_write(schema: str, data: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=f"cannot encode {schema}: {message}"):
        encode_dict(schema, data)


def test_encode_errors_do_not_show_values() -> None:
    with pytest.raises(SchemaError) as caught:
        encode_dict("SyrkRow", {**SYRK, "gmsfhm": 32072319800101123})
    assert "32072319800101123" not in str(caught.value)


# --- corrupted input ---------------------------------------------------------------

GOOD = encode(SOURCE_CASES[0])
UNUSED_ID = next(
    i for i in range(1, 100) if i not in {REGISTRY.by_name(n).schema_id for n in REGISTRY.names}
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated message: 0 bytes"),
        (GOOD[:4], "truncated message: 4 bytes"),
        (b"\x01" + GOOD[1:], "wrong magic byte 0x01"),
        (b"{" + GOOD[1:], "wrong magic byte 0x7b"),
        (b"\x00" + struct.pack(">I", UNUSED_ID) + GOOD[5:], f"unknown schema id {UNUSED_ID}"),
        (GOOD + b"\x00\x00", "2 trailing bytes"),
    ],
)
def test_corrupted_bytes_raise_schema_error(data: bytes, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        decode(data)


def test_every_truncation_of_a_message_is_a_schema_error() -> None:
    for case in CASES:
        data = encode(case)
        for cut in range(5, len(data)):
            with pytest.raises(SchemaError, match=r"truncated|trailing|corrupt") as caught:
                decode(data[:cut])
            assert type(case).__name__ in str(caught.value)


def test_schema_error_is_a_value_error() -> None:
    assert issubclass(SchemaError, ValueError)


def test_decoded_record_breaking_model_rules_fails_validation() -> None:
    data = encode_dict("SyrkRow", {**SYRK, "xb": "3"})
    assert decode(data)[1]["xb"] == "3"
    with pytest.raises(ValidationError, match="xb"):
        decode_model(data)


# --- shape validation: what the spec admits passes ------------------------------


def test_source_models_keep_nasty_values_as_received() -> None:
    member = PartyMember.model_validate(PARTY_MEMBER)
    assert member.idCard == " 32072319800101123x " and member.name == "买买提·艾力　"
    assert member.updatedAt == datetime(2026, 10, 22, 9, 30, 0, 123456, tzinfo=CST)
    assert member.birthDate == date(1980, 1, 1)
    assert SyrkRow.model_validate(SYRK).gmsfhm == "320723800101123"
    roster = ElderlyAllowanceRow.model_validate(ELDERLY)
    assert (roster.id_number, roster.seq, roster.age) == ("3.20723E+17", 12, 86)
    assert roster.amount == Decimal("300.00") and roster.phone == ""
    assert DisabilitySubsidyRow.model_validate(DISABILITY).amount == Decimal("215.5")
    assert HotlineTicket.model_validate(TICKET).callerPhone == "139****5678"


def test_source_models_ignore_fields_the_spec_does_not_name() -> None:
    ticket = HotlineTicket.model_validate({**TICKET, "newField": "x"})
    assert "newField" not in ticket.model_dump()


def test_ticket_is_open_until_finished_or_revisited() -> None:
    statuses = {
        "受理": True,
        "派单": True,
        "处置中": True,
        "退单": True,
        "办结": False,
        "回访": False,
    }
    for status, is_open in statuses.items():
        assert HotlineTicket.model_validate({**TICKET, "status": status}).is_open is is_open


# --- shape validation: what the spec rules out fails --------------------------


@pytest.mark.parametrize(
    ("model", "base", "field", "bad"),
    [
        (SyrkRow, SYRK, "xb", "3"),
        (SyrkRow, SYRK, "rylb", "04"),
        (SyrkRow, SYRK, "zxbz", "2"),
        (SyrkRow, SYRK, "gmsfhm", 320723800101123),
        (SyrkRow, SYRK, "gxsj", "2026-10-22 09:30:05"),
        (SyrkRow, SYRK, "gxsj", datetime(2026, 10, 22, tzinfo=CST)),
        (SyrkRow, SYRK, "csrq", "1980-01-01"),
        (JqRow, JQ, "jqlb", "07"),
        (JqRow, JQ, "jqzt", "已撤销"),
        (JqRow, JQ, "jd", "119.2"),
        (JqRow, JQ, "wd", Decimal("34.1234567")),
        (PartyMember, PARTY_MEMBER, "gender", "M"),
        (PartyMember, PARTY_MEMBER, "status", "在职"),
        (PartyMember, PARTY_MEMBER, "memberType", "党员"),
        (PartyMember, PARTY_MEMBER, "updatedAt", "2026-10-22T09:30:00"),
        (PartyMember, PARTY_MEMBER, "updatedAt", 1761096600),
        (PartyMember, PARTY_MEMBER, "birthDate", "19800101"),
        (PartyMember, PARTY_MEMBER, "birthDate", "1980-02-30"),
        (PartyMember, PARTY_MEMBER, "mobile", None),
        (PartyActivity, PARTY_ACTIVITY, "kind", "学习"),
        (PartyActivity, PARTY_ACTIVITY, "hours", 0.3),
        (PartyActivity, PARTY_ACTIVITY, "hours", -0.5),
        (PartyActivity, PARTY_ACTIVITY, "hours", "1.5"),
        (JzdxRow, JZDX, "jzlx", "五保"),
        (JzdxRow, JZDX, "bzje", 980.5),
        (JzdxRow, JZDX, "deleted", "false"),
        (JzdxRow, JZDX, "updated_at", datetime(2026, 10, 22)),
        (ElderlyAllowanceRow, ELDERLY, "month", "202613"),
        (ElderlyAllowanceRow, ELDERLY, "amount", "abc"),
        (ElderlyAllowanceRow, ELDERLY, "seq", "一"),
        (DisabilitySubsidyRow, DISABILITY, "disability_category", "视觉"),
        (DisabilitySubsidyRow, DISABILITY, "disability_level", "五级"),
        (DisabilitySubsidyRow, DISABILITY, "amount", 0.1 + 0.2),
        (HotlineTicket, TICKET, "status", "已办结"),
        (HotlineTicket, TICKET, "satisfaction", "一般"),
        (HotlineTicket, TICKET, "urgent", 2),
        (HotlineTicket, TICKET, "urgent", True),
        (HotlineTicket, TICKET, "createTime", "1761100000000"),
        (HotlineTicket, TICKET, "lng", "119.2"),
        (PersonEvent, PERSON_EVENT, "source", "census"),
        (PersonEvent, PERSON_EVENT, "id_number", "32072319800101123x"),
        (PersonEvent, PERSON_EVENT, "id_number", "320723800101123"),
        (PersonEvent, PERSON_EVENT, "phone", "139****5678"),
        (PersonEvent, PERSON_EVENT, "event_time", datetime(2026, 10, 22)),
        (PersonEvent, PERSON_EVENT, "attributes", {"deregistered": True}),
        (PersonEvent, PERSON_EVENT, "lng", float("nan")),
        (ResidentRecord, RESIDENT, "placement", "guess"),
        (ResidentRecord, RESIDENT, "population_type", "常住"),
        (ResidentRecord, RESIDENT, "assistance", ["五保"]),
        (ResidentRecord, RESIDENT, "hotline_tickets", -1),
        (ResidentRecord, RESIDENT, "incidents", 2**32),
        (ResidentRecord, RESIDENT, "version", 2**63),
        (ResidentRecord, RESIDENT, "grid_code", "32072310000100"),
        (AreaRecord, AREA, "residents", -1),
        (AreaRecord, AREA, "volunteer_hours_30d", -0.5),
        (DeadLetter, DEAD_LETTER, "raw", "not bytes"),
        (EventRow, EVENT_ROW, "entity", "members"),
        (UnlinkedRecord, UNLINKED, "community_code", "3207231000"),
    ],
)
def test_shape_violations_are_rejected(
    model: type[BaseModel], base: dict[str, Any], field: str, bad: Any
) -> None:
    with pytest.raises(ValidationError):
        model.model_validate({**base, field: bad})


@pytest.mark.parametrize(
    "model, base",
    [
        (SyrkRow, SYRK),
        (PartyMember, PARTY_MEMBER),
        (HotlineTicket, TICKET),
        (PersonEvent, PERSON_EVENT),
    ],
)
def test_missing_required_field_is_rejected(model: type[BaseModel], base: dict[str, Any]) -> None:
    required = next(name for name, info in model.model_fields.items() if info.is_required())
    with pytest.raises(ValidationError, match=required):
        model.model_validate({k: v for k, v in base.items() if k != required})


def test_hub_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        AreaRecord.model_validate({**AREA, "population": 1})


# --- hub-model invariants ---------------------------------------------------


def test_hub_times_are_normalised_to_utc_milliseconds() -> None:
    local = datetime(2026, 10, 22, 9, 30, 0, 123987, tzinfo=CST)
    event = PersonEvent.model_validate({**PERSON_EVENT, "event_time": local})
    assert event.event_time == datetime(2026, 10, 22, 1, 30, 0, 123000, tzinfo=UTC)
    assert event.event_time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"link_rule": "none"}, "resident_key must be set exactly when"),
        ({"resident_key": None}, "resident_key must be set exactly when"),
        ({"area_code": None}, "area_system and area_code"),
        ({"entity": "tickets"}, "does not belong to source 'police'"),
    ],
)
def test_person_event_invariants(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PersonEvent.model_validate({**PERSON_EVENT, **changes})


def test_resident_open_tickets_cannot_exceed_linked() -> None:
    with pytest.raises(ValidationError, match="hotline_open"):
        ResidentRecord.model_validate({**RESIDENT, "hotline_open": 4})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"part": 2}, "part 2 is out of range for 2 parts"),
        ({"partition_count": 0}, "greater than or equal to 1"),
        ({"cursor": "page=3"}, "cursor is not JSON"),
        ({"records": [b"\x01\x00\x00\x00\x01"]}, r"records\[0\] is not in the wire format"),
        ({"records": [b"\x00\x00"]}, r"records\[0\] is not in the wire format"),
        ({"source": "party"}, "does not belong to source 'party'"),
    ],
)
def test_envelope_invariants(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Envelope.model_validate({**ENVELOPE_CASE.model_dump(), **changes})


def test_envelope_defaults_to_a_single_part() -> None:
    fields = ENVELOPE_CASE.model_dump(exclude={"partition_count", "part"})
    envelope = Envelope.model_validate(fields)
    assert (envelope.partition_count, envelope.part) == (1, 0)
    assert decode_model(encode(envelope)) == envelope
    records = [decode_model(record) for record in envelope.records]
    assert all(isinstance(record, HotlineTicket) for record in records)


# --- generated instances round-trip -----------------------------------------------

ZONES = st.sampled_from([UTC, CST, timezone(timedelta(hours=-3, minutes=-30))])
DAY_MIN, DAY_MAX = date(1900, 1, 1), date(2100, 12, 31)
TIME_MIN, TIME_MAX = datetime(1900, 1, 1), datetime(2100, 12, 31)


def _strategy(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Values a model field accepts, derived from its annotation and constraints."""
    annotation = _unwrap(annotation, metadata)
    origin = get_origin(annotation)
    if _is_union(annotation):
        (member,) = [arg for arg in get_args(annotation) if arg is not type(None)]
        return st.none() | _strategy(member, metadata)
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is list:
        return st.lists(_strategy(get_args(annotation)[0], []), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
    if annotation is str:
        pattern = _constraint(metadata, "pattern")
        if pattern is not None:
            return st.from_regex(pattern, fullmatch=True)
        low = next((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), 0)
        high = next((m.max_length for m in metadata if isinstance(m, annotated_types.MaxLen)), 40)
        return st.text(min_size=low, max_size=high)
    if annotation is int:
        return st.integers(_constraint(metadata, "ge"), _constraint(metadata, "le"))
    if annotation is float:
        step = _constraint(metadata, "multiple_of")
        if step is not None:
            return st.integers(0, 10**6).map(lambda n: n * step)
        return st.floats(_constraint(metadata, "ge"), allow_nan=False, allow_infinity=False)
    if annotation is Decimal:
        digits, places = (
            _constraint(metadata, "max_digits"),
            _constraint(metadata, "decimal_places"),
        )
        bound = Decimal(10) ** (digits - places) - Decimal(10) ** -places
        return st.decimals(-bound, bound, places=places, allow_nan=False, allow_infinity=False)
    if annotation is AwareDatetime:
        return st.datetimes(TIME_MIN, TIME_MAX, timezones=ZONES)
    if annotation is NaiveDatetime:
        return st.datetimes(TIME_MIN, TIME_MAX)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        date: st.dates(DAY_MIN, DAY_MAX),
        bool: st.booleans(),
        bytes: st.binary(max_size=32),
    }
    return simple[annotation]


def _source_of_entity(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "source": ENTITY_SOURCE[data["entity"]]}


def _fix_person_event(data: dict[str, Any]) -> dict[str, Any]:
    data = _source_of_entity(data)
    if data["link_rule"] == "none":
        data["resident_key"] = None
    elif data["resident_key"] is None:
        data["resident_key"] = "rk"
    if data["area_code"] is None:
        data["area_system"] = None
    elif data["area_system"] is None:
        data["area_code"] = None
    return data


def _fix_area_event(data: dict[str, Any]) -> dict[str, Any]:
    data = _source_of_entity(data)
    if (data["area_code"] is None) != (data["area_system"] is None):
        data["area_code"] = data["area_system"] = None
    return data


def _fix_envelope(data: dict[str, Any]) -> dict[str, Any]:
    data = _source_of_entity(data)
    data["part"] %= data["partition_count"]
    data["cursor"] = json.dumps(data["cursor"])
    data["records"] = [b"\x00\x00\x00\x00\x01" + record for record in data["records"]]
    return data


def _fix_row_batch(data: dict[str, Any]) -> dict[str, Any]:
    count = min(len(data["tables"]), len(data["blocks"]), len(data["row_counts"]))
    for name in ("tables", "blocks", "row_counts"):
        data[name] = data[name][:count]
    data["acks"] = [b"\x00\x00\x00\x00\x01" + ack for ack in data["acks"]]
    return data


# Cross-field rules a per-field strategy cannot know about.
FIXUPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "PersonEvent": _fix_person_event,
    "AreaEvent": _fix_area_event,
    "EventRow": _source_of_entity,
    "UnlinkedRecord": _source_of_entity,
    "Envelope": _fix_envelope,
    "RowBatch": _fix_row_batch,
    "ResidentRecord": lambda d: {**d, "hotline_open": min(d["hotline_open"], d["hotline_tickets"])},
}


def _instances(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    fields = {
        name: _strategy(info.annotation, list(info.metadata))
        for name, info in model.model_fields.items()
    }
    fixup = FIXUPS.get(model.__name__, lambda d: d)
    return st.fixed_dictionaries(fields).map(fixup).map(model.model_validate)


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=15, deadline=None, database=None)
@given(data=st.data())
def test_generated_instances_round_trip(name: str, data: st.DataObject) -> None:
    instance = data.draw(_instances(MODELS[name]))
    assert decode_model(encode(instance)) == instance
