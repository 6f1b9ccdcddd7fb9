"""Whether a new version of a schema may join a subject: Confluent's compatibility levels.

The schema-resolution rules themselves are Apache Avro's own
(``avro.compatibility.ReaderWriterCompatibilityChecker``, the port of Java's
``SchemaCompatibility`` that Confluent's registry uses), so the embedded
registry refuses exactly what a real one refuses. This module only says which
pairs to check for each level:

==========================  ====================================================
``NONE``                    nothing
``BACKWARD``                the new schema reads data written with the latest
``FORWARD``                 the latest reads data written with the new schema
``FULL``                    both
``*_TRANSITIVE``            the same against every earlier version, not only the latest
==========================  ====================================================

Logical types are dropped before checking, as Java's checker ignores them; that
also keeps the Python parser from warning about ones it does not know
(``local-timestamp-micros``).
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal, get_args

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from .exceptions import SchemaError

TCompatibility = Literal[
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
]
LEVELS: Final[tuple[str, ...]] = get_args(TCompatibility)
DEFAULT_LEVEL: Final[TCompatibility] = "BACKWARD"


def _without_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_logical_types(v) for key, v in node.items() if key != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(item) for item in node]
    return node


def parse_for_checking(schema_text: str) -> avro.schema.Schema:
    """The schema as Avro's checker wants it.

    Raises:
        SchemaError: the text is not JSON or not a valid Avro schema (the
            message says what the parser objected to).
    """
    try:
        tree = json.loads(schema_text)
        return avro.schema.parse(json.dumps(_without_logical_types(tree)))
    except (ValueError, TypeError, avro.errors.AvroException) as exc:
        raise SchemaError(f"not a valid Avro schema: {exc}") from exc


def reading_problems(reader: avro.schema.Schema, writer: avro.schema.Schema) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro's __init__
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = ", ".join(sorted({kind.value for kind in result.incompatibilities}))
    where = ", ".join(sorted(result.locations - {"/"}) or ["/"])
    what = ", ".join(sorted(result.messages))
    return [f"{kinds} at {where}: {what}"]


def compatibility_problems(
    new: avro.schema.Schema, earlier: list[avro.schema.Schema], level: str
) -> list[str]:
    """What stops ``new`` from joining a subject whose versions are ``earlier`` (oldest
    first) under ``level``; empty when it may join.

    Each problem says which earlier version it concerns, counting from 1, and in
    which direction the reading fails, so a clerk can tell "the new schema cannot
    read old data" from "old consumers cannot read the new data".
    """
    if level == "NONE" or not earlier:
        return []
    numbered = list(enumerate(earlier, start=1))
    against = numbered if level.endswith("_TRANSITIVE") else numbered[-1:]
    base = level.removesuffix("_TRANSITIVE")
    problems: list[str] = []
    for version, old in against:
        if base in ("BACKWARD", "FULL"):
            problems += [
                f"the new schema cannot read data written with version {version} ({problem})"
                for problem in reading_problems(new, old)
            ]
        if base in ("FORWARD", "FULL"):
            problems += [
                f"version {version} cannot read data written with the new schema ({problem})"
                for problem in reading_problems(old, new)
            ]
    return problems
