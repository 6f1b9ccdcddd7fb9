"""Stage 1: validate each source record, find whose it is, and route it there.

Consumes ``raw.<source>.<entity>`` (one Envelope per connector batch).
Produces ``person`` (Envelopes of the same record bytes, one per partition
touched, with each record's resident key in ``keys``), ``phones`` (records
without a valid ID number but with a valid, unmasked phone, keyed by the phone:
identity.md's rule 2 decides them in ``streams/phone_link.py``) and
``dead_letters`` (one DeadLetter Envelope). State: none.

Records travel on unchanged (the source's Avro bytes), so the hot path pays
for one decode here and one in the merge, not for re-encoding a canonical
form. Dead-letter reasons: the record does not decode, fails its pydantic
model (the first error, with the field), or is a person record whose
公民身份号码 is missing or invalid (the normaliser's reason) and that carries
no phone to link by. Every raw record leaves this stage exactly once, routed
or dead-lettered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridhub.schemas import MODELS, SchemaError, decode, encode_dict
from gridhub.streams.identity import ResidentKeyer, partition_for
from gridhub.streams.normalize import normalize_id_number, normalize_phone
from pydantic import ValidationError

SCHEMA_OF = {
    "syrk": "SyrkRow",
    "jq": "JqRow",
    "jzdx": "JzdxRow",
    "members": "PartyMember",
    "activities": "PartyActivity",
    "tickets": "HotlineTicket",
    "roster_elderly": "ElderlyAllowanceRow",
    "roster_disability": "DisabilitySubsidyRow",
    "roster_editions": "RosterEdition",
}
"""Entities this stage accepts, and the model each is validated with."""
KEY_COLUMN = {
    "syrk": "rkbh",
    "jq": "jqbh",
    "jzdx": "id",
    "members": "memberId",
    "activities": "activityId",
    "tickets": "ticketNo",
    "roster_editions": "file_name",
}
ROSTERS = frozenset({"roster_elderly", "roster_disability"})
"""Roster rows have no key of their own: ``<file name>#<序号>`` names them."""
BROADCAST = frozenset({"roster_editions"})
"""Records every partition of ``person`` needs: a roster edition changes whoever it lists,
or no longer lists, wherever they are."""
BROADCAST_KEY = "#"
"""Keys of a broadcast record's copies: ``#<partition>``."""
PERSON_ID = {
    "syrk": "gmsfhm",
    "jzdx": "sfzh",
    "members": "idCard",
    "roster_elderly": "id_number",
    "roster_disability": "id_number",
}
"""Person records: without a valid ID number they are dead letters (identity.md)."""
EVIDENCE_ID = {"jq": "bjrsfzh", "tickets": "callerIdCard"}
"""Records that link by ID when they carry a valid one and wait unlinked otherwise."""
PHONE_OF = {
    "syrk": "lxdh",
    "jzdx": "lxdh",
    "members": "mobile",
    "roster_elderly": "phone",
    "roster_disability": "phone",
    "jq": "bjrdh",
    "tickets": "callerPhone",
}
"""Where each record that may link by phone (rule 2) carries it."""


class Rejected(Exception):
    """A record that cannot go on; ``reason`` goes to dead letters."""

    def __init__(self, reason: str, source_key: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.source_key = source_key


@dataclass
class RoutedBatch:
    """What one raw envelope became: per partition, (record bytes, key) pairs."""

    routed: dict[int, tuple[list[bytes], list[str]]] = field(default_factory=dict)
    by_phone: dict[int, tuple[list[bytes], list[str]]] = field(default_factory=dict)
    """Per partition of ``phones``, the records rule 2 decides, each with its phone."""
    dead_letters: list[bytes] = field(default_factory=list)

    @property
    def parts(self) -> int:
        """Messages this batch produces downstream (one per partition of ``person`` and
        of ``phones`` + dead letters)."""
        return len(self.routed) + len(self.by_phone) + (1 if self.dead_letters else 0)


def decode_record(entity: str, raw: bytes, *, validate: bool = True) -> dict[str, Any]:
    """The record as a dict with the model's types; Avro wire format, or JSON a
    connector fell back to. ``validate=False`` trusts Avro records that this
    stage has already validated (the merge decodes them a second time).

    Raises:
        Rejected: undecodable, wrong schema, or invalid for its model.
    """
    schema_name = SCHEMA_OF.get(entity)
    if schema_name is None:
        raise Rejected(f"entity {entity} is not accepted by this hub version")
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
        if not isinstance(data, dict):
            raise Rejected("record is JSON but not an object")
        validate = True
    if not validate:
        return data
    key = record_key(entity, data)
    try:
        model = MODELS[schema_name].model_validate(data, strict=raw[:1] == b"\x00")
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise Rejected(f"{schema_name} {where}: {error['msg']}", key) from exc
    return model.model_dump() if raw[:1] != b"\x00" else data


JSON_CONTENT_TYPE = "application/json"
"""A record sent on a raw topic as JSON carries ``content-type: application/json``."""


def raw_head(
    topic: str, prefix: str, value: bytes, headers: dict[str, bytes], seq: int
) -> dict[str, Any]:
    """What one message on ``<prefix>.raw.<source>.<entity>`` carries, as an Envelope.

    The raw topics take three shapes (the ingest contract, README): an Envelope (a
    batch, what the hub's connectors send), one source record in its Avro schema in
    the Confluent wire format, or one record as JSON with the header
    ``content-type: application/json``. A single record becomes a batch of one,
    numbered ``seq`` (outside any connector's numbers). Anything else is refused,
    with a reason for the dead letters.

    Raises:
        Rejected: the topic is not a raw topic of a known entity, or the value has
            none of the three shapes.
    """
    source, _, entity = topic.removeprefix(f"{prefix}.raw.").partition(".")
    if entity not in SCHEMA_OF:
        raise Rejected(f"{topic} is not a raw topic of an entity this hub takes")
    single = {
        "source": source,
        "entity": entity,
        "seq": seq,
        "cursor": "{}",
        "records": [value],
        "partition_count": 1,
        "part": 0,
    }
    if value[:1] == b"\x00":
        try:
            name, data = decode(value)
        except SchemaError as exc:
            raise Rejected(f"message on {topic} does not decode: {exc}") from exc
        if name == "Envelope":
            if (data["source"], data["entity"]) != (source, entity):
                raise Rejected(
                    f"an Envelope of {data['source']}.{data['entity']} was sent to {topic}"
                )
            return data
        if name == SCHEMA_OF[entity]:
            return single
        raise Rejected(f"a {name} record was sent to {topic}, which takes {SCHEMA_OF[entity]}")
    content_type = headers.get("content-type", b"").decode("utf-8", "replace").lower()
    if content_type.startswith(JSON_CONTENT_TYPE):
        return single
    raise Rejected(
        f"message on {topic} is neither an Envelope, a {SCHEMA_OF[entity]} in the Confluent "
        f"wire format, nor JSON with the header content-type: {JSON_CONTENT_TYPE}"
    )


def record_key(entity: str, data: dict[str, Any]) -> str:
    """A record's key in its source, as far as it can be read."""
    if entity in ROSTERS:
        return f"{data.get('file_name') or ''}#{data.get('seq') or ''}"
    return str(data.get(KEY_COLUMN[entity]) or "")


def partition_of_key(key: str, partitions: int) -> int:
    """The partition of ``person`` a routed record's key belongs to."""
    if key.startswith(BROADCAST_KEY):
        return int(key[len(BROADCAST_KEY) :])
    return partition_for(key, partitions)


def unlinked_key(source: str, entity: str, source_key: str) -> str:
    """Key of a record that links to no resident (stable per record, spreads partitions)."""
    text = f"{source}:{entity}:{source_key}"
    return "u" + hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def resident_key_of(entity: str, data: dict[str, Any], keyer: ResidentKeyer) -> str | None:
    """The resident a record belongs to by its ID number, or None (unlinked).

    Raises:
        Rejected: a person record without a valid ID number.
    """
    column = PERSON_ID.get(entity)
    if column is not None:
        identity = normalize_id_number(data[column])
        if identity.value is None:
            raise Rejected(str(identity.reason), record_key(entity, data))
        return keyer.for_id(identity.value)
    column = EVIDENCE_ID.get(entity)
    if column is not None and data.get(column):
        value = normalize_id_number(data[column]).value
        return keyer.for_id(value) if value else None
    return None


def phone_of(entity: str, data: dict[str, Any]) -> str | None:
    """The valid, unmasked phone a record could link by (rule 2), or None."""
    column = PHONE_OF.get(entity)
    text = data.get(column) if column else None
    return normalize_phone(text).value if text else None


def dead_letter(source: str, entity: str, reason: str, raw: bytes, key: str) -> bytes:
    """A DeadLetter record in the wire format."""
    return encode_dict(
        "DeadLetter",
        {
            "source": source,
            "entity": entity,
            "source_key": key,
            "reason": reason,
            "raw": raw,
            "received_at": datetime.now(UTC),
        },
    )


def route(
    source: str, entity: str, records: list[bytes], keyer: ResidentKeyer, partitions: int
) -> RoutedBatch:
    """Validate and key one raw batch; group it by the partition that owns each key."""
    out = RoutedBatch()
    for raw in records:
        try:
            data = decode_record(entity, raw)
            if entity in BROADCAST:
                for partition in range(partitions):
                    records_of, keys_of = out.routed.setdefault(partition, ([], []))
                    records_of.append(raw)
                    keys_of.append(f"{BROADCAST_KEY}{partition}")
                continue
            try:
                key = resident_key_of(entity, data, keyer)
            except Rejected:
                key = None
                if phone_of(entity, data) is None:
                    raise
            if key is None:
                phone = phone_of(entity, data)
                if phone is not None:  # rule 2 decides, in the phone's partition
                    records_of, keys_of = out.by_phone.setdefault(
                        partition_for(phone, partitions), ([], [])
                    )
                    records_of.append(raw)
                    keys_of.append(phone)
                    continue
                key = unlinked_key(source, entity, record_key(entity, data))
        except Rejected as exc:
            out.dead_letters.append(dead_letter(source, entity, exc.reason, raw, exc.source_key))
            continue
        records_of, keys_of = out.routed.setdefault(partition_for(key, partitions), ([], []))
        records_of.append(raw)
        keys_of.append(key)
    return out
