"""Avro serialisation in the Confluent wire format.

A message is ``0x00`` (magic byte), the schema id as 4 big-endian bytes, then
the record in Avro binary encoding without any schema or framing (fastavro's
"schemaless" form). The id resolves to a schema in ``LocalSchemaRegistry``.

``encode_dict`` is the hot path: connectors hand it plain dicts whose values
are already Avro-compatible Python types (``str``, ``int``, ``float``,
``Decimal``, ``date``, ``datetime``, ``bytes``, lists, dicts, ``None``); no
pydantic model is built. ``encode`` and ``decode_model`` go through the
models for code that wants validation.
"""

import io
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.types import Schema
from fastavro.validation import ValidationError, validate
from pydantic import BaseModel

from .catalog import MODELS
from .exceptions import SchemaError
from .registry import (
    HEADER_SIZE,
    MAGIC_BYTE,
    LocalSchemaRegistry,
    RegisteredSchema,
    default_registry,
)


def encode_dict(
    schema_name: str, data: dict[str, Any], *, registry: LocalSchemaRegistry | None = None
) -> bytes:
    """Encode a plain dict with the named schema.

    Args:
        schema_name: record name, e.g. ``"SyrkRow"``.
        data: field values in Avro-compatible Python types; keys not in the
            schema are ignored, missing nullable fields are written as null.
        registry: where to find the schema; the package's own by default.

    Returns:
        The message in the Confluent wire format.

    Raises:
        SchemaError: unknown schema name, or data the schema cannot encode
            (the message names the offending field).
    """
    entry = (registry or default_registry()).by_name(schema_name)
    buffer = io.BytesIO()
    buffer.write(entry.header)
    try:
        schemaless_writer(buffer, entry.schema, data)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        raise SchemaError(_explain_encode_failure(entry, data, exc)) from exc
    return buffer.getvalue()


def _explain_encode_failure(entry: RegisteredSchema, data: object, exc: Exception) -> str:
    """Say which fields broke the encoder; validation runs only on this slow path.

    The message names fields and types but never values, which may be
    personal data.
    """
    if not isinstance(data, dict):
        return f"cannot encode {entry.name}: expected a dict, got {type(data).__name__}"
    fields = entry.schema["fields"] if isinstance(entry.schema, dict) else []
    problems = []
    for field in fields:
        value = data.get(field["name"])
        try:
            validate(value, field["type"], raise_errors=True)
        except ValidationError:
            problems.append(
                f"{field['name']} is {_kind(value)}, expected {_describe(field['type'])}"
            )
        except (TypeError, ValueError, AttributeError, OverflowError) as problem:
            problems.append(f"{field['name']}: {problem}")
    found = "; ".join(problems) or f"{type(exc).__name__}: {exc}"
    return f"cannot encode {entry.name}: {found}"


def _kind(datum: object) -> str:
    """Name a value's type without showing the value."""
    return "missing or None" if datum is None else type(datum).__name__


def _describe(schema: object) -> str:
    """Name an Avro type briefly: its logical type, primitive or union members."""
    if isinstance(schema, list):
        return " or ".join(_describe(member) for member in schema)
    if isinstance(schema, dict):
        return str(schema.get("logicalType") or schema.get("type"))
    return str(schema)


def encode(record: BaseModel, *, registry: LocalSchemaRegistry | None = None) -> bytes:
    """Encode a model with the schema named like its class.

    Raises:
        SchemaError: no schema is named like the model's class.
    """
    return encode_dict(type(record).__name__, record.model_dump(), registry=registry)


def decode(
    data: bytes, *, registry: LocalSchemaRegistry | None = None
) -> tuple[str, dict[str, Any]]:
    """Decode one wire-format message.

    Returns:
        The schema name and the record as a dict of Python values (logical
        types already converted: ``datetime``, ``date``, ``Decimal``).

    Raises:
        SchemaError: the message is shorter than its header, has a wrong
            magic byte, names an unknown schema id, or its Avro body is
            truncated, corrupt or followed by trailing bytes.
    """
    if len(data) < HEADER_SIZE:
        raise SchemaError(
            f"truncated message: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte "
            "wire-format header"
        )
    if data[0] != MAGIC_BYTE:
        raise SchemaError(
            f"wrong magic byte 0x{data[0]:02x}: expected 0x00 (Confluent wire format)"
        )
    entry = (registry or default_registry()).by_id(int.from_bytes(data[1:HEADER_SIZE], "big"))
    label = f"{entry.name} (schema id {entry.schema_id})"
    return entry.name, read_body(data, entry.schema, None, label=label)


def read_body(data: bytes, writer: Schema, reader: Schema | None, *, label: str) -> dict[str, Any]:
    """The record after the 5-byte header, written with ``writer`` and read as ``reader``
    (Avro schema resolution; ``None`` reads it as written).

    Raises:
        SchemaError: the body is truncated or corrupt, is followed by trailing
            bytes, does not resolve into ``reader``, or is not a record;
            ``label`` names the message in the reason.
    """
    buffer = io.BytesIO(data)
    buffer.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(buffer, writer, reader)
    # The body is untrusted bytes: whatever the reader trips over means corrupt input.
    except Exception as exc:
        raise SchemaError(
            f"cannot decode {label}: Avro body truncated, corrupt or not resolvable "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    trailing = len(data) - buffer.tell()
    if trailing:
        raise SchemaError(f"corrupt {label} message: {trailing} trailing bytes after the record")
    if not isinstance(record, dict):
        raise SchemaError(f"{label} did not decode to a record")
    return record


def decode_model(data: bytes, *, registry: LocalSchemaRegistry | None = None) -> BaseModel:
    """Decode one wire-format message and validate it with its model.

    Raises:
        SchemaError: as for ``decode``, or no model is registered for the schema.
        pydantic.ValidationError: the record decoded but breaks the model's rules.
    """
    name, record = decode(data, registry=registry)
    model = MODELS.get(name)
    if model is None:
        raise SchemaError(f"no pydantic model for schema {name!r}")
    return model.model_validate(record)
