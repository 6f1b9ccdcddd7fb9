"""Record schemas of the hub: Avro files for the wire, pydantic models for code.

Layout
------
Every record type exists twice, kept in step by ``tests/schemas``:

* ``avro/<Name>.avsc`` — the Avro record schema (namespace ``gridhub``), with a
  ``doc`` on every field. This is what travels between processes.
* a pydantic v2 model of the same name, in a module per system:

  ``party``     ``PartyMember``, ``PartyActivity`` (the API's camelCase names)
  ``police``    ``SyrkRow``, ``JqRow`` (the tables' column names)
  ``civil``     ``JzdxRow``, ``ElderlyAllowanceRow``, ``DisabilitySubsidyRow``
  ``hotline``   ``HotlineTicket`` (the API's camelCase names)
  ``canonical`` ``PersonEvent``, the normaliser's output for any source record
  ``merged``    ``ResidentRecord``, ``AreaRecord``, ``EventRow``, ``DeadLetter``,
                ``UnlinkedRecord``, ``GridDeparture`` (rows of the ClickHouse tables)
  ``envelope``  ``Envelope``, one connector batch of wire-format records;
                ``BatchAck``; ``RowBatch``, merged rows on their way to the store

Source models check shape only (types, required fields, enumerations) and
keep values as the source sent them; identity is the normaliser's job.
``common`` holds the shared types, ``catalog`` maps names to models.

Wire format
-----------
Confluent's: byte 0 is the magic byte ``0x00``, bytes 1-4 the schema id
(big-endian unsigned), then the record in Avro binary encoding with no
embedded schema. A schema's id is the CRC-32 of its Avro Parsing Canonical
Form masked to 31 bits, so it is the same in every process and needs no
server (``registry.LocalSchemaRegistry``). ``serde.encode_dict`` is the hot
path for plain dicts; ``encode``/``decode_model`` go through the models.
Bad bytes raise ``SchemaError`` saying what was wrong.
"""

from .canonical import AreaEvent, PersonEvent
from .catalog import ENTITY_MODELS, MODELS
from .civil import DisabilitySubsidyRow, ElderlyAllowanceRow, JzdxRow, RosterEdition
from .envelope import BatchAck, Envelope, PhoneClaim, RowBatch
from .exceptions import SchemaError
from .hotline import HotlineTicket
from .merged import (
    AreaRecord,
    DeadLetter,
    EventRow,
    GridDeparture,
    ResidentRecord,
    UnlinkedRecord,
)
from .party import PartyActivity, PartyMember
from .police import JqRow, SyrkRow
from .registry import LocalSchemaRegistry, default_registry
from .serde import decode, decode_model, encode, encode_dict

__all__ = [
    "ENTITY_MODELS",
    "MODELS",
    "AreaEvent",
    "AreaRecord",
    "BatchAck",
    "DeadLetter",
    "DisabilitySubsidyRow",
    "ElderlyAllowanceRow",
    "Envelope",
    "EventRow",
    "GridDeparture",
    "HotlineTicket",
    "JqRow",
    "JzdxRow",
    "LocalSchemaRegistry",
    "PartyActivity",
    "PartyMember",
    "PersonEvent",
    "PhoneClaim",
    "ResidentRecord",
    "RosterEdition",
    "RowBatch",
    "SchemaError",
    "SyrkRow",
    "UnlinkedRecord",
    "decode",
    "decode_model",
    "default_registry",
    "encode",
    "encode_dict",
]
