"""The embedded registry speaks Confluent's REST API: paths, content type, error bodies."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from gridhub.schemas.registry_client import CONTENT_TYPE

from gridhub.errors import ConfigError
from gridhub.registry.server import RegistryServer, serve_registry
from tests.gridhub.registry.conftest import SUBJECT, hub_schema

SCHEMA = json.dumps(hub_schema())


def call(server: RegistryServer, method: str, path: str, body: object = None) -> httpx.Response:
    headers = {"Content-Type": CONTENT_TYPE}
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=5)


def test_answers_carry_confluents_content_type_and_shapes(
    registry_server: RegistryServer,
) -> None:
    registered = call(registry_server, "POST", f"/subjects/{SUBJECT}/versions", {"schema": SCHEMA})
    assert registered.headers["content-type"] == CONTENT_TYPE
    sid = registered.json()["id"]
    assert call(registry_server, "GET", f"/subjects/{SUBJECT}/versions").json() == [1]
    version = call(registry_server, "GET", f"/subjects/{SUBJECT}/versions/latest").json()
    assert {k: version[k] for k in ("subject", "version", "id")} == {
        "subject": SUBJECT,
        "version": 1,
        "id": sid,
    }
    raw = call(registry_server, "GET", f"/subjects/{SUBJECT}/versions/1/schema").json()
    assert raw["name"] == "SyrkRow"
    uses = call(registry_server, "GET", f"/schemas/ids/{sid}/versions").json()
    assert uses == [{"subject": SUBJECT, "version": 1}]
    assert call(registry_server, "GET", "/config").json() == {"compatibilityLevel": "BACKWARD"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", f"/subjects/{SUBJECT}/versions", None, 404, 40401),
        ("GET", "/schemas/ids/12", None, 404, 40403),
        ("POST", f"/subjects/{SUBJECT}/versions", {"schema": "{not json"}, 422, 42201),
        ("POST", f"/subjects/{SUBJECT}", {"schema": SCHEMA, "schemaType": "JSON"}, 422, 42201),
        ("PUT", "/config", {"compatibility": "SIDEWAYS"}, 422, 42203),
        ("GET", f"/config/{SUBJECT}", None, 404, 40408),
    ],
)
def test_errors_are_confluents_error_bodies(
    registry_server: RegistryServer, method: str, path: str, body: object, status: int, code: int
) -> None:
    answer = call(registry_server, method, path, body)
    assert answer.status_code == status
    assert answer.json()["error_code"] == code
    assert answer.json()["message"]


def test_versions_beyond_the_last_and_non_numbers_are_refused(
    registry_server: RegistryServer,
) -> None:
    call(registry_server, "POST", f"/subjects/{SUBJECT}/versions", {"schema": SCHEMA})
    assert call(registry_server, "GET", f"/subjects/{SUBJECT}/versions/2").json()["error_code"] == (
        40402
    )
    assert call(registry_server, "GET", f"/subjects/{SUBJECT}/versions/x").json()["error_code"] == (
        42202
    )


def test_only_loopback_is_served_and_a_taken_port_moves_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"registry\.serve.*loopback"):
        RegistryServer("0.0.0.0:0", tmp_path)
    first = serve_registry("127.0.0.1:0", tmp_path)
    try:
        second = serve_registry(first.address, tmp_path)
        assert second.address != first.address
        second.stop()
    finally:
        first.stop()
