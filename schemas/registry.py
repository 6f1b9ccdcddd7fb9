"""A schema registry that lives in the package, not on a server.

Every ``.avsc`` file in ``schemas/avro/`` is one record schema, named like the
file. Its id is derived from the schema itself: the CRC-32 (zlib) of its
Avro Parsing Canonical Form, masked to 31 bits. So every process computes the
same id without coordination, and adding a schema never renumbers the others.
Parsing Canonical Form drops ``doc``, ``default`` and ``logicalType``, so
editing documentation keeps the id; changing a field's name, type or order
gives a new one.
"""

import json
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, to_parsing_canonical_form
from fastavro.types import Schema

from .exceptions import SchemaError

MAGIC_BYTE: Final = 0
HEADER_SIZE: Final = 5
"""Magic byte plus the 4-byte big-endian schema id."""
ID_MASK: Final = 0x7FFFFFFF


def schema_id(canonical_form: str) -> int:
    """Return the deterministic id of a schema from its Parsing Canonical Form."""
    return zlib.crc32(canonical_form.encode("utf-8")) & ID_MASK


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """One schema as the registry knows it.

    Attributes:
        name: record name without namespace, equal to the model class name.
        schema_id: deterministic id written into every message.
        schema: the fastavro-parsed schema, ready for reading and writing.
        canonical_form: the Parsing Canonical Form the id is computed from.
        header: the 5-byte wire-format prefix (magic byte + big-endian id).
    """

    name: str
    schema_id: int
    schema: Schema
    canonical_form: str
    header: bytes


DEFAULT_DIRECTORY: Final = Path(__file__).parent / "avro"


class LocalSchemaRegistry:
    """All schemas of one directory, resolvable by name and by id."""

    def __init__(self, directory: Path | None = None) -> None:
        """Load and parse every ``*.avsc`` in ``directory``.

        Args:
            directory: folder of schema files; the package's ``avro/`` by default.

        Raises:
            SchemaError: a file is not a record schema named like the file, two
                files define the same name, or two schemas share an id.
        """
        self.directory = directory or DEFAULT_DIRECTORY
        self._by_name: dict[str, RegisteredSchema] = {}
        self._by_id: dict[int, RegisteredSchema] = {}
        for path in sorted(self.directory.glob("*.avsc")):
            self._add(self._load(path))

    @staticmethod
    def _load(path: Path) -> RegisteredSchema:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            parsed = parse_schema(raw)
        except (ValueError, TypeError, KeyError, SchemaParseException) as exc:
            raise SchemaError(f"cannot parse schema file {path.name}: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("type") != "record":
            raise SchemaError(f"schema file {path.name} is not a record schema")
        if raw.get("name") != path.stem:
            raise SchemaError(f"schema file {path.name} defines record {raw.get('name')!r}")
        canonical = to_parsing_canonical_form(parsed)
        sid = schema_id(canonical)
        header = struct.pack(">BI", MAGIC_BYTE, sid)
        return RegisteredSchema(path.stem, sid, parsed, canonical, header)

    def _add(self, entry: RegisteredSchema) -> None:
        if entry.name in self._by_name:
            raise SchemaError(f"schema {entry.name!r} is defined twice in {self.directory}")
        clash = self._by_id.get(entry.schema_id)
        if clash is not None:
            raise SchemaError(
                f"schemas {clash.name!r} and {entry.name!r} share id {entry.schema_id}"
            )
        self._by_name[entry.name] = entry
        self._by_id[entry.schema_id] = entry

    @property
    def names(self) -> tuple[str, ...]:
        """Names of all registered schemas, sorted."""
        return tuple(sorted(self._by_name))

    def by_name(self, name: str) -> RegisteredSchema:
        """Return the schema called ``name``.

        Raises:
            SchemaError: no such schema.
        """
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(f"unknown schema name {name!r}") from None

    def by_id(self, sid: int) -> RegisteredSchema:
        """Return the schema with id ``sid``.

        Raises:
            SchemaError: no schema has this id.
        """
        try:
            return self._by_id[sid]
        except KeyError:
            raise SchemaError(f"unknown schema id {sid}") from None


@cache
def default_registry() -> LocalSchemaRegistry:
    """The registry of the package's own schemas, loaded once per process."""
    return LocalSchemaRegistry()
