"""``POST /ingest/v1/{source}/{entity}`` on a real loopback server, publishing to the
embedded broker: per-record answers, refused records kept for the dead letters, and
the 401/404/400/413 a sending system needs to act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from gridhub.connectors.base.checkpoint import FOREIGN_SEQ_START
from gridhub.connectors.http_ingest import HttpIngest
from gridhub.schemas.serde import decode
from pydantic import SecretStr

from gridhub.config import HubConfig
from gridhub.health import HealthServer
from gridhub.runtime.broker import EmbeddedBroker
from tests.cases.police_rows import MEMBER
from tests.connectors.conftest import RawTopics

TOKEN = "ingest-token-0123456789"


def member_json(**changes: Any) -> dict[str, Any]:
    """A member as the party system would send it (JSON types)."""
    record = {**MEMBER, **changes}
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in record.items()}


@pytest.fixture
def endpoint(broker: EmbeddedBroker) -> Iterator[tuple[str, RawTopics]]:
    raw = RawTopics(broker.bootstrap, source="party")
    config = HubConfig(ingest_token=SecretStr(TOKEN), ingest_max_records=3, ingest_max_bytes=4096)
    ingest = HttpIngest(config, broker.bootstrap, raw.topics)
    server = HealthServer("127.0.0.1:0", lambda: {"status": "ok"}, ingest)
    server.start()
    yield f"http://{server.address}", raw
    server.stop()
    ingest.close()


def post(url: str, body: Any, token: str = TOKEN, path: str = "party/members") -> httpx.Response:
    return httpx.post(
        f"{url}/ingest/v1/{path}",
        content=body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_each_record_is_answered_and_every_one_travels_on(
    endpoint: tuple[str, RawTopics],
) -> None:
    url, raw = endpoint
    answer = post(url, [member_json(), member_json(memberId="M2", gender="X")])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][0] == {"index": 0, "status": "accepted"}
    assert body["results"][1]["status"] == "rejected"
    assert "gender" in body["results"][1]["error"]
    (batch,) = raw.batches("members")
    assert batch.seq >= FOREIGN_SEQ_START  # moves no connector's checkpoint
    accepted, refused = batch.records
    assert decode(accepted)[1]["memberId"] == "M0012345"  # Avro, as validated
    assert json.loads(refused)["memberId"] == "M2"  # JSON: the route stage dead-letters it


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"body": [], "token": "wrong"}, 401, "token"),
        ({"body": [], "path": "party/nothing"}, 404, "party/members"),
        ({"body": b"{not json"}, 400, "not JSON"),
        ({"body": {"memberId": "M1"}}, 400, "array"),
        ({"body": [{}, {}, {}, {}]}, 413, "at most 3"),
        ({"body": [{"name": "x" * 5000}]}, 413, "4096"),
    ],
)
def test_a_request_it_cannot_take_gets_a_status_that_says_why(
    endpoint: tuple[str, RawTopics], kwargs: dict[str, Any], status: int, words: str
) -> None:
    url, raw = endpoint
    answer = post(url, **kwargs)
    assert answer.status_code == status
    assert words in answer.json()["error"]
    assert raw.batches("members") == []
