"""What the hub registers at start: one subject per raw topic, refused or retried."""

from __future__ import annotations

from pathlib import Path

import pytest
from gridhub.schemas import default_registry
from gridhub.schemas.exceptions import SchemaIncompatible
from gridhub.schemas.registry_client import SchemaRegistryClient
from gridhub.streams.route import SCHEMA_OF

from gridhub.registry.server import RegistryServer
from gridhub.registry.subjects import raw_subjects, register_raw_subjects
from gridhub.topics import Topics
from tests.gridhub.registry.conftest import SUBJECT, hub_schema, retyped


def test_every_raw_entity_is_registered_under_its_topic_value_subject(
    client: SchemaRegistryClient,
) -> None:
    ids = register_raw_subjects(client, Topics("gridhub"))
    assert SUBJECT in ids
    assert len(ids) == len(SCHEMA_OF)
    assert sorted(client.subjects()) == sorted(raw_subjects(Topics("gridhub")))
    for subject, name in raw_subjects(Topics("gridhub")).items():
        assert ids[subject] == default_registry().by_name(name).schema_id


def test_a_subject_holding_an_incompatible_version_stops_the_start(
    client: SchemaRegistryClient,
) -> None:
    client.register(SUBJECT, retyped(hub_schema(), "rkbh", "int"))
    with pytest.raises(SchemaIncompatible) as refused:
        register_raw_subjects(client, Topics("gridhub"))
    assert refused.value.subject == SUBJECT
    assert "rkbh" in str(refused.value) or "/fields/0" in str(refused.value)


def test_an_unreachable_registry_is_retried_until_it_answers(tmp_path: Path) -> None:
    probe = RegistryServer("127.0.0.1:0", tmp_path)
    address = probe.address
    probe.stop()  # the port is free again: nothing answers there yet
    started: list[RegistryServer] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            server = RegistryServer(address, tmp_path)
            server.start()
            started.append(server)

    try:
        with SchemaRegistryClient(f"http://{address}", timeout=2) as client:
            ids = register_raw_subjects(client, Topics("gridhub"), sleep=sleep)
        assert len(ids) == len(SCHEMA_OF)
        assert waits == [1.0, 2.0]
    finally:
        for server in started:
            server.stop()
