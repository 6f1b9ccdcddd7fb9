"""The hub's own subjects: one per raw topic, registered every time the hub starts.

A system that publishes itself to ``<prefix>.raw.<source>.<entity>`` finds the
record schema the hub reads there under the subject ``<topic>-value``
(Confluent's TopicNameStrategy, what its serializers use by default). The hub
registers its current schema of each entity at start. If the registry refuses
it as incompatible with what the subject already holds, the hub must not start:
publishers' data would no longer be readable, and the message says which
subject and why. An unreachable registry is reported and retried until it
answers, since the hub cannot promise its contract without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gridhub.logs import get_logger
from gridhub.schemas.exceptions import RegistryUnavailable
from gridhub.schemas.registry import LocalSchemaRegistry, default_registry
from gridhub.schemas.registry_client import SchemaRegistryClient, value_subject
from gridhub.streams.route import SCHEMA_OF
from gridhub.topics import SOURCE_ENTITIES, Topics

log = get_logger("registry.subjects")

MAX_RETRY_DELAY_S = 30.0


def raw_subjects(topics: Topics) -> dict[str, str]:
    """Subject -> record schema name, for every raw topic whose entity the hub takes."""
    return {
        value_subject(topics.raw(source, entity)): SCHEMA_OF[entity]
        for source, entities in SOURCE_ENTITIES.items()
        for entity in entities
        if entity in SCHEMA_OF
    }


def register_raw_subjects(
    client: SchemaRegistryClient,
    topics: Topics,
    *,
    catalog: LocalSchemaRegistry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Register the hub's schema of every raw entity under its subject.

    Returns:
        Subject -> the id the registry gave the schema.

    Raises:
        SchemaIncompatible: a subject holds versions the hub's schema may not follow.
        RegistryRefused: the registry refuses for another reason (credentials, say).
    """
    catalog = catalog or default_registry()
    ids: dict[str, int] = {}
    delay = 1.0
    for subject, name in raw_subjects(topics).items():
        schema = catalog.by_name(name)
        text = (catalog.directory / f"{name}.avsc").read_text(encoding="utf-8")
        while True:
            try:
                ids[subject] = client.register(subject, text)
                break
            except RegistryUnavailable as exc:
                log.warning("waiting for the schema registry", reason=str(exc), retry_in=delay)
                sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)
        if ids[subject] != schema.schema_id:
            log.info(
                "registry numbers schemas itself",
                subject=subject,
                registry_id=ids[subject],
                catalog_id=schema.schema_id,
            )
    log.info("schemas registered", registry=client.url, subjects=len(ids))
    return ids
