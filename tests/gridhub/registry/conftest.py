"""The embedded schema registry on loopback, and schemas that differ from the hub's."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from gridhub.schemas.registry import DEFAULT_DIRECTORY
from gridhub.schemas.registry_client import SchemaRegistryClient

from gridhub.registry.server import RegistryServer

SUBJECT = "gridhub.raw.police.syrk-value"


def hub_schema(name: str = "SyrkRow") -> dict[str, Any]:
    """The hub's own schema of ``name``, as a JSON tree."""
    tree: dict[str, Any] = json.loads((DEFAULT_DIRECTORY / f"{name}.avsc").read_text("utf-8"))
    return tree


def without_field(tree: dict[str, Any], field: str) -> dict[str, Any]:
    """An older version: the same record before ``field`` was added."""
    return {**tree, "fields": [f for f in tree["fields"] if f["name"] != field]}


def retyped(tree: dict[str, Any], field: str, avro_type: str) -> dict[str, Any]:
    """An incompatible version: ``field`` with another type and no default."""
    fields = [
        {"name": f["name"], "type": avro_type} if f["name"] == field else f for f in tree["fields"]
    ]
    return {**tree, "fields": fields}


def written_with(schema: dict[str, Any], schema_id: int, row: dict[str, Any]) -> bytes:
    """A record as a publisher's serializer writes it: the registry's id in the header."""
    buffer = io.BytesIO()
    buffer.write(struct.pack(">BI", 0, schema_id))
    schemaless_writer(buffer, parse_schema(schema), row)
    return buffer.getvalue()


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def registry_server(registry_dir: Path) -> Iterator[RegistryServer]:
    server = RegistryServer("127.0.0.1:0", registry_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client(registry_server: RegistryServer) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient(registry_server.url, timeout=5.0) as registry:
        yield registry
