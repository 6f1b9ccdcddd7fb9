"""Single records written with a schema the hub does not carry, made into the hub's own.

A publisher's Avro serializer writes whatever id the schema registry gave its
schema. When that id is in the hub's catalog, the record is already in the
hub's schema and nothing happens here. Otherwise the writer's schema is
fetched from the registry (once per id: the client caches it), the record is
read with Avro schema resolution into the hub's schema of the topic's entity
(fields the hub does not know are dropped, fields the writer did not have take
the hub's defaults), and it is written again in the hub's schema. So a
publisher still on an older compatible version is accepted, and every stage
after this one sees the hub's schemas only.

Dead-letter reasons (``Rejected``): the registry does not know the id, the
writer's schema cannot be resolved into the hub's (an incompatible record), or
the body does not decode with the writer's schema. An unreachable registry is
no reason to reject a record: ``resolve_foreign`` waits and retries, and the
consumer's offset stays where it is meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastavro import parse_schema
from fastavro.types import Schema
from gridhub.schemas import SchemaError, encode_dict
from gridhub.schemas.exceptions import RegistryUnavailable, SchemaNotFound
from gridhub.schemas.registry import HEADER_SIZE, MAGIC_BYTE, LocalSchemaRegistry, default_registry
from gridhub.schemas.registry_client import SchemaRegistryClient, value_subject
from gridhub.schemas.serde import read_body
from gridhub.streams.route import SCHEMA_OF, Rejected

from gridhub.logs import get_logger

log = get_logger("streams.writer_schema")

MAX_RETRY_DELAY_S = 30.0


class WriterSchemas:
    """Writer schemas from the registry, and the resolution of records written with them."""

    def __init__(
        self, client: SchemaRegistryClient, catalog: LocalSchemaRegistry | None = None
    ) -> None:
        self.client = client
        self.catalog = catalog or default_registry()
        self._parsed: dict[int, Schema] = {}
        self.retries = 0
        """Calls that found the registry unreachable (for status and metrics)."""

    def is_foreign(self, value: bytes) -> bool:
        """Whether ``value`` is in the wire format with an id outside the hub's catalog."""
        if len(value) < HEADER_SIZE or value[0] != MAGIC_BYTE:
            return False
        sid = int.from_bytes(value[1:HEADER_SIZE], "big")
        try:
            self.catalog.by_id(sid)
        except SchemaError:
            return True
        return False

    def to_hub_schema(self, topic: str, value: bytes) -> bytes:
        """The record in ``value`` (a foreign id) in the hub's schema of ``topic``'s entity.

        Raises:
            Rejected: the id is unknown to the registry, or the record cannot be
                read with its writer's schema into the hub's.
            RegistryUnavailable: the registry cannot be reached; try again later.
        """
        entity = topic.rpartition(".")[2]
        name = SCHEMA_OF.get(entity)
        if name is None:
            raise Rejected(f"{topic} is not a raw topic of an entity this hub takes")
        sid = int.from_bytes(value[1:HEADER_SIZE], "big")
        writer = self._writer(sid, topic)
        reader = self.catalog.by_name(name)
        try:
            record = read_body(value, writer, reader.schema, label=f"schema id {sid} as {name}")
            return encode_dict(name, record)
        except SchemaError as exc:
            raise Rejected(f"a record written with schema id {sid} cannot be read: {exc}") from exc

    def _writer(self, sid: int, topic: str) -> Schema:
        parsed = self._parsed.get(sid)
        if parsed is not None:
            return parsed
        try:
            text = self.client.schema_by_id(sid)
        except SchemaNotFound as exc:
            raise Rejected(
                f"schema id {sid} is neither one of this hub's schemas nor known to the schema "
                f"registry at {self.client.url}; register the writer's schema under subject "
                f"{value_subject(topic)} and write the id the registry gives it"
            ) from exc
        try:
            tree: Any = json.loads(text)
            parsed = parse_schema(tree)
        except Exception as exc:  # the registry's text, but still foreign input
            raise Rejected(f"schema id {sid} from the registry does not parse: {exc}") from exc
        self._parsed[sid] = parsed
        return parsed


async def resolve_foreign(schemas: WriterSchemas, topic: str, value: bytes) -> bytes:
    """``schemas.to_hub_schema`` off the event loop, waiting out an unreachable registry.

    Raises:
        Rejected: as ``to_hub_schema``.
    """
    delay = 0.5
    while True:
        try:
            return await asyncio.to_thread(schemas.to_hub_schema, topic, value)
        except RegistryUnavailable as exc:
            schemas.retries += 1
            log.warning("route waiting for the schema registry", reason=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)
