"""Records written with a registry id outside the hub's catalog (``streams/writer_schema.py``),
resolved through the embedded registry over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from gridhub.schemas import encode_dict
from gridhub.schemas.registry_client import SchemaRegistryClient
from gridhub.streams.route import Rejected, decode_record
from gridhub.streams.writer_schema import WriterSchemas, resolve_foreign

from gridhub.registry.server import RegistryServer
from tests.cases.police_rows import SYRK_ROW
from tests.gridhub.registry.conftest import (
    SUBJECT,
    hub_schema,
    retyped,
    without_field,
    written_with,
)

TOPIC = "gridhub.raw.police.syrk"


@pytest.fixture
def schemas(tmp_path: Path) -> Iterator[WriterSchemas]:
    server = RegistryServer("127.0.0.1:0", tmp_path)
    server.start()
    with SchemaRegistryClient(server.url) as client:
        client.register(SUBJECT, hub_schema())
        yield WriterSchemas(client)
    server.stop()


def test_a_record_of_an_older_version_is_rewritten_in_the_hubs_schema(
    schemas: WriterSchemas,
) -> None:
    older = without_field(hub_schema(), "lxdh")
    older_id = schemas.client.register(SUBJECT, older)
    value = written_with(older, older_id, SYRK_ROW)
    assert schemas.is_foreign(value)
    hub_bytes = schemas.to_hub_schema(TOPIC, value)
    assert not schemas.is_foreign(hub_bytes)
    data = decode_record("syrk", hub_bytes)
    assert data["lxdh"] is None  # the hub's default for what the writer did not have
    assert {k: data[k] for k in ("rkbh", "gmsfhm", "gxsj")} == {
        k: SYRK_ROW[k] for k in ("rkbh", "gmsfhm", "gxsj")
    }


def test_the_hubs_own_ids_need_no_registry(schemas: WriterSchemas) -> None:
    assert not schemas.is_foreign(encode_dict("SyrkRow", SYRK_ROW))
    assert not schemas.is_foreign(b'{"rkbh": "json"}')


def test_an_id_the_registry_does_not_know_is_rejected_with_what_to_do(
    schemas: WriterSchemas,
) -> None:
    value = written_with(hub_schema(), 424242, SYRK_ROW)
    with pytest.raises(Rejected) as rejected:
        schemas.to_hub_schema(TOPIC, value)
    assert "schema id 424242" in rejected.value.reason
    assert SUBJECT in rejected.value.reason and schemas.client.url in rejected.value.reason


def test_a_writer_schema_the_hubs_cannot_read_is_rejected(schemas: WriterSchemas) -> None:
    schemas.client.set_compatibility("NONE", SUBJECT)
    incompatible = retyped(hub_schema(), "rkbh", "int")
    sid = schemas.client.register(SUBJECT, incompatible)
    value = written_with(incompatible, sid, {**SYRK_ROW, "rkbh": 7})
    with pytest.raises(
        Rejected, match=f"schema id {sid} cannot be read: cannot decode schema id {sid} as SyrkRow"
    ):
        asyncio.run(resolve_foreign(schemas, TOPIC, value))
