"""Stage 1: source records become canonical person events, or dead letters.

Consumes ``raw.<source>.<entity>`` (one Envelope per connector batch).
Produces ``person`` (PersonEvent envelopes, one per partition touched) and
``dead_letters`` (DeadLetter envelope). State: none.

Dead-letter reasons: the record does not decode, fails its pydantic model
(the first error, with the field), or is a person record whose 公民身份号码 is
missing or invalid (the normaliser's reason). Every raw record leaves this
stage exactly once, as an event or as a dead letter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from gridhub.schemas import MODELS, SchemaError, decode, encode_dict
from gridhub.streams.identity import ResidentKeyer, partition_for
from gridhub.streams.normalize import (
    china_local_to_utc,
    gender_from_id,
    normalize_id_number,
    normalize_name,
    normalize_phone,
)
from pydantic import BaseModel, ValidationError

POPULATION_TYPES = {"01": "户籍", "02": "流动", "03": "境外"}
GENDERS = {"1": "男", "2": "女"}


class Rejected(Exception):
    """A record this stage cannot turn into an event; ``reason`` goes to dead letters."""

    def __init__(self, reason: str, source_key: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.source_key = source_key


@dataclass
class CanonicalBatch:
    """What one raw envelope became."""

    events: dict[int, list[bytes]] = field(default_factory=dict)
    dead_letters: list[bytes] = field(default_factory=list)

    @property
    def parts(self) -> int:
        """Messages this batch produces downstream (person envelopes + a dead-letter one)."""
        return len(self.events) + (1 if self.dead_letters else 0)


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def payload_json(record: dict[str, Any]) -> str:
    """The record as JSON text, as the source sent it."""
    return json.dumps(record, ensure_ascii=False, default=_json_default, separators=(",", ":"))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"


def _syrk_event(row: BaseModel, keyer: ResidentKeyer, now: datetime) -> dict[str, Any]:
    """A ``syrk`` row as a PersonEvent dict."""
    data = row.model_dump()
    identity = normalize_id_number(data["gmsfhm"])
    if identity.value is None:
        raise Rejected(str(identity.reason), data["rkbh"])
    id18 = identity.value
    phone = normalize_phone(data["lxdh"]).value
    event_time = china_local_to_utc(data["gxsj"])
    return {
        "source": "police",
        "entity": "syrk",
        "source_key": data["rkbh"],
        "event_time": event_time,
        "ingested_at": now,
        "resident_key": keyer.for_id(id18),
        "id_number": id18,
        "link_rule": "id_number",
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


def _csrq(text: str, id18: str) -> date | None:
    """``csrq`` as a date; an impossible one yields to the date inside the ID number."""
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        return date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))


def _jq_event(row: BaseModel, keyer: ResidentKeyer, now: datetime) -> dict[str, Any]:
    """A ``jq`` incident: linked by the reporter's ID when usable, else unlinked.

    Incidents without usable identity are normal (identity.md): they stay
    unlinked and still count where they are placed.
    """
    data = row.model_dump()
    identity = normalize_id_number(data["bjrsfzh"]) if data["bjrsfzh"] else None
    id18 = identity.value if identity else None
    return {
        "source": "police",
        "entity": "jq",
        "source_key": data["jqbh"],
        "event_time": china_local_to_utc(data["gxsj"]),
        "ingested_at": now,
        "resident_key": keyer.for_id(id18) if id18 else None,
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


MAPPERS: dict[tuple[str, str], Callable[[BaseModel, ResidentKeyer, datetime], dict[str, Any]]] = {
    ("police", "syrk"): _syrk_event,
    ("police", "jq"): _jq_event,
}
"""Source entities this stage turns into person events; others are recorded as events only."""

MODEL_OF = {"syrk": "SyrkRow", "jq": "JqRow"}


def _decode_record(entity: str, raw: bytes) -> BaseModel:
    schema_name = MODEL_OF.get(entity)
    if schema_name is None:
        raise Rejected(f"entity {entity} is not handled yet")
    if raw[:1] == b"\x00":
        try:
            name, data = decode(raw)
        except SchemaError as exc:
            raise Rejected(f"undecodable record: {exc}") from exc
        if name != schema_name:
            raise Rejected(f"record has schema {name}, expected {schema_name}")
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Rejected(f"record is neither Avro nor JSON: {exc}") from exc
    try:
        return MODELS[schema_name].model_validate(data)
    except ValidationError as exc:
        key = data.get("rkbh") or data.get("jqbh") or "" if isinstance(data, dict) else ""
        raise Rejected(f"{schema_name} {_first_error(exc)}", str(key)) from exc


def dead_letter(
    source: str, entity: str, reason: str, raw: bytes, key: str, now: datetime
) -> bytes:
    """A DeadLetter record in the wire format."""
    return encode_dict(
        "DeadLetter",
        {
            "source": source,
            "entity": entity,
            "source_key": key,
            "reason": reason,
            "raw": raw,
            "received_at": now,
        },
    )


def canonicalize(
    source: str, entity: str, records: list[bytes], keyer: ResidentKeyer, partitions: int
) -> CanonicalBatch:
    """Turn one raw batch into person events by partition, plus dead letters."""
    now = datetime.now(UTC)
    out = CanonicalBatch()
    mapper = MAPPERS.get((source, entity))
    for raw in records:
        try:
            model = _decode_record(entity, raw)
            if mapper is None:
                raise Rejected(f"{source}/{entity} records are not merged yet")
            event = mapper(model, keyer, now)
        except Rejected as exc:
            out.dead_letters.append(
                dead_letter(source, entity, exc.reason, raw, exc.source_key, now)
            )
            continue
        partition = partition_for(event["resident_key"] or unlinked_key(event), partitions)
        out.events.setdefault(partition, []).append(encode_dict("PersonEvent", event))
    return out


def unlinked_key(event: dict[str, Any]) -> str:
    """Partitioning key of an event that links to no resident (stable per record)."""
    text = f"{event['source']}:{event['entity']}:{event['source_key']}"
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def raw_hash(raw: bytes) -> str:
    """Identity of a dead letter's raw bytes (a replay writes the same row again)."""
    return hashlib.sha256(raw).hexdigest()
