"""Source records become canonical person events (the PersonEvent schema's fields).

Pure mappers, one per source entity, from a record already validated by its
model (as a plain dict) and the resident key the routing stage derived, to a
PersonEvent dict. The merge stage calls them; nothing here touches Kafka.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from gridhub.streams.normalize import (
    birth_date_from_id,
    china_local_to_utc,
    gender_from_id,
    normalize_id_number,
    normalize_name,
    normalize_phone,
)

POPULATION_TYPES = {"01": "户籍", "02": "流动", "03": "境外"}
GENDERS = {"1": "男", "2": "女"}


def _json_default(value: Any) -> str:
    # DATETIME and DECIMAL as the database prints them ("2026-10-22 08:15:00", "119.21")
    return str(value)


def payload_json(record: dict[str, Any]) -> str:
    """The record as JSON text, as the source sent it."""
    return json.dumps(record, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def _syrk_event(data: dict[str, Any], resident_key: str | None, now: datetime) -> dict[str, Any]:
    """A ``syrk`` row as a PersonEvent dict."""
    id18 = normalize_id_number(data["gmsfhm"]).value
    phone = normalize_phone(data["lxdh"]).value
    event_time = china_local_to_utc(data["gxsj"])
    return {
        "source": "police",
        "entity": "syrk",
        "source_key": data["rkbh"],
        "event_time": event_time,
        "ingested_at": now,
        "resident_key": resident_key,
        "id_number": id18,
        "link_rule": _person_link(id18, resident_key),
        "name": normalize_name(data["xm"]),
        "gender": GENDERS.get(data["xb"]),  # xb = 9 is no value (identity.md)
        "birth_date": _csrq(data["csrq"], id18),
        "phone": phone,
        "phone_time": event_time if phone else None,
        "address": (data["jzdz"] or "").strip() or None,
        "address_id": (data["dzbm"] or "").strip() or None,
        "area_system": "police" if data["zrq"] else None,
        "area_code": data["zrq"] or None,
        "lng": None,
        "lat": None,
        "attributes": {
            "population_type": POPULATION_TYPES[data["rylb"]],
            "deregistered": "1" if data["zxbz"] == "1" else "0",
            "gender_code": data["xb"],
        },
        "payload": payload_json(data),
    }


def _person_link(id18: str | None, resident_key: str | None) -> str:
    """A person record is linked by its ID number, or, without a valid one, by the phone
    stage (rule 2), or not at all (the phone stage reading it before it decides)."""
    if id18 is not None:
        return "id_number"
    return "phone" if resident_key else "none"


def _csrq(text: str, id18: str | None) -> date | None:
    """``csrq`` as a date; an impossible one yields to the date inside the ID number."""
    text = text.strip()
    if len(text) == 8 and text.isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            pass
    return birth_date_from_id(id18) if id18 else None


def _jq_event(data: dict[str, Any], resident_key: str | None, now: datetime) -> dict[str, Any]:
    """A ``jq`` incident: linked by the reporter's ID when usable, else unlinked.

    Incidents without usable identity are normal (identity.md): they stay
    unlinked and still count where they are placed.
    """
    id18 = normalize_id_number(data["bjrsfzh"]).value if resident_key else None
    return {
        "source": "police",
        "entity": "jq",
        "source_key": data["jqbh"],
        "event_time": china_local_to_utc(data["gxsj"]),
        "ingested_at": now,
        "resident_key": resident_key,
        "id_number": id18,
        "link_rule": "id_number" if id18 else "none",
        "name": normalize_name(data["bjrxm"]),
        "gender": gender_from_id(id18) if id18 else None,
        "birth_date": None,
        "phone": normalize_phone(data["bjrdh"]).value,
        "phone_time": None,
        "address": (data["fadz"] or "").strip() or None,
        "address_id": None,
        "area_system": "police" if data["zrq"] else None,
        "area_code": data["zrq"] or None,
        "lng": float(data["jd"]) if data["jd"] is not None else None,
        "lat": float(data["wd"]) if data["wd"] is not None else None,
        "attributes": {
            "reported_at": china_local_to_utc(data["bjsj"]).isoformat(),
            "category": data["jqlb"],
            "status": data["jqzt"],
        },
        "payload": payload_json(data),
    }


def _linked_record(
    data: dict[str, Any],
    resident_key: str | None,
    now: datetime,
    *,
    source: str,
    entity: str,
    source_key: str,
    id_text: str,
    event_time: datetime,
    name: str,
    phone_text: str | None,
    address: str | None,
    area_system: str,
    area_code: str | None,
    attributes: dict[str, str],
    gender: str | None = None,
    birth_date: date | None = None,
    phone_timed: bool = True,
) -> dict[str, Any]:
    """A person record, linked by its ID number or by rule 2; its phone is an observation
    at ``event_time`` unless ``phone_timed`` is false (a roster says no time of its own)."""
    id18 = normalize_id_number(id_text).value
    event_time = event_time.astimezone(UTC)
    phone = normalize_phone(phone_text).value
    area_code = (area_code or "").strip() or None
    return {
        "source": source,
        "entity": entity,
        "source_key": source_key,
        "event_time": event_time,
        "ingested_at": now,
        "resident_key": resident_key,
        "id_number": id18,
        "link_rule": _person_link(id18, resident_key),
        "name": normalize_name(name),
        "gender": gender,
        "birth_date": birth_date,
        "phone": phone,
        "phone_time": event_time if phone and phone_timed else None,
        "address": (address or "").strip() or None,
        "address_id": None,
        "area_system": area_system if area_code else None,
        "area_code": area_code,
        "lng": None,
        "lat": None,
        "attributes": attributes,
        "payload": payload_json(data),
    }


def _jzdx_event(data: dict[str, Any], resident_key: str | None, now: datetime) -> dict[str, Any]:
    """A ``jzdx`` row (assistance recipient) as a PersonEvent dict.

    Its phone is a timed observation (``updated_at``); its address is the
    family address in the civil community ``sqdm``; it carries no gender (the
    merge reads it from the ID number). A soft-deleted row still travels (it
    is a new version of the record) with ``deleted = 1``, and the merge makes
    it contribute nothing.
    """
    return _linked_record(
        data,
        resident_key,
        now,
        source="civil",
        entity="jzdx",
        source_key=str(data["id"]),
        id_text=data["sfzh"],
        event_time=data["updated_at"],
        name=data["xm"],
        phone_text=data["lxdh"],
        address=data["jtzz"],
        area_system="civil",
        area_code=data["sqdm"],
        attributes={
            "assistance_type": data["jzlx"],
            "deleted": "1" if data["deleted"] else "0",
            "start": data["ksrq"].isoformat(),
            "end": data["jsrq"].isoformat() if data["jsrq"] else "",
            "amount": str(data["bzje"]),
        },
    )


def _member_event(data: dict[str, Any], resident_key: str | None, now: datetime) -> dict[str, Any]:
    """A party member as a PersonEvent dict.

    The member's mobile is a timed observation (``updatedAt``); the residence
    address is free text in the member's party grid (``partyGridCode``,
    crosswalked). Membership facts travel as attributes for the merge.
    """
    return _linked_record(
        data,
        resident_key,
        now,
        source="party",
        entity="members",
        source_key=data["memberId"],
        id_text=data["idCard"],
        event_time=data["updatedAt"],
        name=data["name"],
        phone_text=data["mobile"],
        address=data["residenceAddress"],
        area_system="party",
        area_code=data["partyGridCode"],
        gender=data["gender"],
        birth_date=data["birthDate"],
        attributes={
            "status": data["status"],
            "member_type": data["memberType"],
            "branch_code": data["branchCode"],
            "branch_name": data["branchName"],
            "report_community": (data["reportCommunityCode"] or "").strip(),
        },
    )


OPEN_UNTIL = frozenset({"办结", "回访"})
"""A ticket is open while its status is none of these (hotline-12345.md)."""


def _ticket_event(data: dict[str, Any], resident_key: str | None, now: datetime) -> dict[str, Any]:
    """A 12345 ticket: linked by the caller's ID when usable, else unlinked.

    Its phone is evidence for linking, never a resident's phone (identity.md), and
    the merge's phone policy does not read it; an anonymous caller (匿名) has no name.
    """
    id18 = normalize_id_number(data["callerIdCard"]).value if resident_key else None
    caller = (data["callerName"] or "").strip()
    return {
        "source": "hotline",
        "entity": "tickets",
        "source_key": data["ticketNo"],
        "event_time": datetime.fromtimestamp(data["updateTime"] / 1000, tz=UTC),
        "ingested_at": now,
        "resident_key": resident_key,
        "id_number": id18,
        "link_rule": "id_number" if id18 else "none",
        "name": normalize_name(caller) if caller and caller != "匿名" else None,
        "gender": gender_from_id(id18) if id18 else None,
        "birth_date": None,
        "phone": normalize_phone(data["callerPhone"]).value,
        "phone_time": None,
        "address": (data["address"] or "").strip() or None,
        "address_id": None,
        "area_system": None,
        "area_code": None,
        "lng": data["lng"],
        "lat": data["lat"],
        "attributes": {
            "status": data["status"],
            "open": "0" if data["status"] in OPEN_UNTIL else "1",
            "category": data["category"],
            "subcategory": data["subcategory"],
        },
        "payload": payload_json(data),
    }


def _roster_event(
    data: dict[str, Any], resident_key: str | None, now: datetime, *, entity: str, allowance: str
) -> dict[str, Any]:
    """A roster row: the person is listed for ``allowance`` in this version of the month.

    Rosters carry no time of their own: the row's time is when its file was completed,
    and its phone is an untimed observation (``phone_time`` empty), which the merge uses
    only when no timed one exists (identity.md). Whether the listing pays the allowance
    now depends on the newest edition of the roster, which the merge decides.
    """
    gender = (data.get("gender") or "").strip()
    return _linked_record(
        data,
        resident_key,
        now,
        source="civil",
        entity=entity,
        source_key=f"{data['file_name']}#{data['seq']}",
        id_text=data["id_number"],
        event_time=data["file_time"] or datetime.fromtimestamp(0, UTC),
        name=data["name"],
        phone_text=data.get("phone"),
        address=data.get("address"),
        area_system="civil",
        area_code=data["community_code"],
        gender=gender if gender in GENDERS.values() else None,
        phone_timed=False,
        attributes={
            "allowance": allowance,
            "month": data["month"],
            "file_sha256": data["file_sha256"] or "",
            "amount": str(data["amount"]),
        },
    )


def _elderly_event(data: dict[str, Any], resident_key: str | None, now: datetime) -> dict[str, Any]:
    """A 高龄津贴 roster row."""
    return _roster_event(data, resident_key, now, entity="roster_elderly", allowance="高龄津贴")


def _disability_event(
    data: dict[str, Any], resident_key: str | None, now: datetime
) -> dict[str, Any]:
    """A 残疾人两项补贴 roster row."""
    return _roster_event(
        data, resident_key, now, entity="roster_disability", allowance="残疾人补贴"
    )


def _activity_event(
    data: dict[str, Any], resident_key: str | None, now: datetime
) -> dict[str, Any]:
    """A party activity: a fact about the party grid it took place in, not about a person.

    It counts in ``grid.area`` on the crosswalk's primary grid of ``partyGridCode``
    (outputs.md); the merge places it there and stores it as an event row only. A
    voided activity arrives as a new version with ``hours: 0``.
    """
    return {
        "source": "party",
        "entity": "activities",
        "source_key": data["activityId"],
        "event_time": data["updatedAt"].astimezone(UTC),
        "ingested_at": now,
        "resident_key": None,
        "id_number": None,
        "link_rule": "none",
        "name": None,
        "gender": None,
        "birth_date": None,
        "phone": None,
        "phone_time": None,
        "address": None,
        "address_id": None,
        "area_system": "party",
        "area_code": (data["partyGridCode"] or "").strip() or None,
        "lng": None,
        "lat": None,
        "attributes": {
            "kind": data["kind"],
            "hours": str(data["hours"]),
            "occurred_at": data["occurredAt"].astimezone(UTC).isoformat(),
            "member_id": data["memberId"],
        },
        "payload": payload_json(data),
    }


Mapper = Callable[[dict[str, Any], str | None, datetime], dict[str, Any]]

MAPPERS: dict[tuple[str, str], Mapper] = {
    ("police", "syrk"): _syrk_event,
    ("police", "jq"): _jq_event,
    ("civil", "jzdx"): _jzdx_event,
    ("civil", "roster_elderly"): _elderly_event,
    ("civil", "roster_disability"): _disability_event,
    ("party", "members"): _member_event,
    ("party", "activities"): _activity_event,
    ("hotline", "tickets"): _ticket_event,
}
"""Source entities that become person events."""
