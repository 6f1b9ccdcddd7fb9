"""The registry client against the embedded registry over real loopback HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from gridhub.schemas import default_registry
from gridhub.schemas.exceptions import (
    RegistryRefused,
    RegistryUnavailable,
    SchemaIncompatible,
    SchemaNotFound,
)
from gridhub.schemas.registry_client import SchemaRegistryClient

from gridhub.registry.server import RegistryServer
from tests.gridhub.registry.conftest import SUBJECT, hub_schema, retyped, without_field


def test_register_gives_the_catalog_id_and_every_lookup_finds_it(
    client: SchemaRegistryClient,
) -> None:
    sid = client.register(SUBJECT, hub_schema())
    assert sid == default_registry().by_name("SyrkRow").schema_id
    assert client.register(SUBJECT, hub_schema()) == sid  # again: no new version
    assert client.subjects() == [SUBJECT]
    latest = client.latest(SUBJECT)
    assert (latest.version, latest.schema_id) == (1, sid)
    assert client.lookup(SUBJECT, hub_schema()).version == 1
    fresh = SchemaRegistryClient(client.url)  # no cache: the answer comes from the server
    assert '"name": "SyrkRow"' in fresh.schema_by_id(sid)
    fresh.close()


def test_an_older_compatible_version_passes_and_becomes_version_2(
    client: SchemaRegistryClient,
) -> None:
    client.register(SUBJECT, hub_schema())
    older = without_field(hub_schema(), "lxdh")
    assert client.test_compatibility(SUBJECT, older).is_compatible
    sid = client.register(SUBJECT, older)
    assert client.version(SUBJECT, 2).schema_id == sid
    assert sid != default_registry().by_name("SyrkRow").schema_id


def test_an_incompatible_change_is_refused_naming_the_subject_and_the_reason(
    client: SchemaRegistryClient,
) -> None:
    client.register(SUBJECT, hub_schema())
    changed = retyped(hub_schema(), "rkbh", "int")
    result = client.test_compatibility(SUBJECT, changed)
    assert not result.is_compatible
    assert any("/fields/0/type" in message for message in result.messages)
    with pytest.raises(SchemaIncompatible) as refused:
        client.register(SUBJECT, changed)
    assert refused.value.subject == SUBJECT
    assert "type_mismatch" in str(refused.value) and SUBJECT in str(refused.value)
    assert client.latest(SUBJECT).version == 1  # nothing was registered


def test_levels_none_and_transitive_change_what_is_refused(
    client: SchemaRegistryClient,
) -> None:
    client.register(SUBJECT, hub_schema())
    client.set_compatibility("NONE", SUBJECT)
    client.register(SUBJECT, retyped(hub_schema(), "rkbh", "int"))  # anything goes
    client.set_compatibility("BACKWARD_TRANSITIVE", SUBJECT)
    # Reads version 2 (rkbh int) but not version 1 (rkbh string): refused transitively.
    candidate = retyped(without_field(hub_schema(), "lxdh"), "rkbh", "int")
    assert client.test_compatibility(SUBJECT, candidate, version="latest").is_compatible
    with pytest.raises(SchemaIncompatible, match="version 1"):
        client.register(SUBJECT, candidate)


def test_unknown_ids_and_subjects_are_not_found(client: SchemaRegistryClient) -> None:
    with pytest.raises(SchemaNotFound, match="Schema 7 not found") as missing:
        client.schema_by_id(7)
    assert missing.value.error_code == 40403
    with pytest.raises(SchemaNotFound) as no_subject:
        client.latest("nobody-value")
    assert no_subject.value.error_code == 40401


def test_ids_and_versions_survive_a_restart(registry_dir: Path) -> None:
    first = RegistryServer("127.0.0.1:0", registry_dir)
    first.start()
    with SchemaRegistryClient(first.url) as client:
        old = client.register(SUBJECT, without_field(hub_schema(), "lxdh"))
        new = client.register(SUBJECT, hub_schema())
    first.stop()
    second = RegistryServer("127.0.0.1:0", registry_dir)
    second.start()
    try:
        with SchemaRegistryClient(second.url) as client:
            assert [client.version(SUBJECT, n).schema_id for n in (1, 2)] == [old, new]
            assert '"lxdh"' not in client.schema_by_id(old)
    finally:
        second.stop()


def test_an_unreachable_registry_names_its_url_but_never_the_password(
    registry_server: RegistryServer,
) -> None:
    port = registry_server.address.rpartition(":")[2]
    registry_server.stop()
    url = f"http://clerk:s3cret-pw@127.0.0.1:{port}"
    with SchemaRegistryClient(url, timeout=2) as client, pytest.raises(RegistryUnavailable) as down:
        client.subjects()
    message = str(down.value)
    assert f"127.0.0.1:{port}" in message and "retried" in message
    assert "s3cret-pw" not in message and "clerk:***" in message


def test_credentials_in_the_url_become_basic_auth_and_refusals_are_mapped() -> None:
    """What a secured Confluent registry answers, which the embedded one never does."""
    seen: list[httpx.Request] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answers = {
            "/subjects": (401, {"error_code": 40101, "message": "Unauthorized"}),
            "/schemas/ids/3": (500, {"error_code": 50001, "message": "store error"}),
        }
        status, body = answers.get(request.url.path, (422, {"error_code": 42201, "message": "x"}))
        return httpx.Response(status, json=body)

    url = "http://clerk:s3cret-pw@registry.example:8081"
    with SchemaRegistryClient(url, transport=httpx.MockTransport(registry)) as client:
        with pytest.raises(RegistryRefused, match="credentials") as refused:
            client.subjects()
        assert "s3cret-pw" not in str(refused.value)
        with pytest.raises(RegistryUnavailable, match="retried"):
            client.schema_by_id(3)
        with pytest.raises(RegistryRefused, match="42201"):
            client.register(SUBJECT, hub_schema())
    assert seen[0].headers["authorization"] == httpx.BasicAuth("clerk", "s3cret-pw")._auth_header
    assert seen[0].headers["accept"] == "application/vnd.schemaregistry.v1+json"
    assert "s3cret" not in str(seen[0].url)
