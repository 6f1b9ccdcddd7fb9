"""The party-building connector against the API simulator on loopback: every member
and activity version published once in effect, whatever the API does (inclusive
``updated_since``, cursor pages, 401, 429 with Retry-After, 5xx, resets, slow
answers)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from gridhub.connectors.base.checkpoint import Checkpoint, FileCheckpointStore
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.party_building.source import PartySource
from gridhub.schemas.serde import decode
from gridhub.simulators.county import County, generate_county
from gridhub.simulators.party_api import PartyApiServer
from hypothesis import given
from pydantic import SecretStr

from gridhub.config import PartySourceConfig
from gridhub.errors import SourceUnavailable
from gridhub.runtime.broker import EmbeddedBroker
from tests.connectors.conftest import (
    RawTopics,
    plans,
    poll_as_the_loop_does,
    property_settings,
)

TOKEN = "party-token-0123456789"
PAGE = 7


@pytest.fixture(scope="module")
def county() -> County:
    return generate_county(400, seed=5)


@pytest.fixture
def api(county: County) -> Iterator[PartyApiServer]:
    with PartyApiServer(county.party_members, county.party_activities, TOKEN) as server:
        yield server


@pytest.fixture
def party_raw(broker: EmbeddedBroker) -> RawTopics:
    return RawTopics(broker.bootstrap, source="party")


def make_source(
    api: PartyApiServer,
    raw: RawTopics,
    directory: Path,
    entities: tuple[str, ...] = ("members",),
    **config: Any,
) -> PartySource:
    settings = PartySourceConfig(
        base_url=api.base_url,
        token=SecretStr(config.pop("token", TOKEN)),
        page_size=PAGE,
        poll_seconds=0.02,
        **config,
    )
    store = FileCheckpointStore(directory)
    return PartySource(
        settings,
        EnvelopePublisher(raw.bootstrap, raw.topics),
        {entity: Checkpoint(store, "party", entity) for entity in entities},
        ack_on_publish=True,
        entities=entities,
    )


def published_activities(raw: RawTopics) -> list[tuple[str, float]]:
    """(activityId, hours) of every published activity."""
    return [
        (activity["activityId"], activity["hours"])
        for activity in (decode(record)[1] for record in raw.records("activities"))
    ]


def published(raw: RawTopics) -> list[tuple[str, str]]:
    """(memberId, updatedAt) of every published member, Avro or JSON fallback."""
    out = []
    for record in raw.records("members"):
        if record[:1] == b"\x00":
            _, member = decode(record)
            out.append((member["memberId"], member["updatedAt"]))
        else:
            member = json.loads(record)
            out.append((member["memberId"], member["updatedAt"]))
    return out


def on_server(county: County) -> int:
    return len({m["memberId"] for m in county.party_members})


def test_every_member_is_published_once_across_pages_and_pulls(
    api: PartyApiServer, party_raw: RawTopics, county: County, tmp_path: Path
) -> None:
    source = make_source(api, party_raw, tmp_path)
    members = on_server(county)
    assert source.poll() == members
    requests = api.requests_served
    assert requests >= members // PAGE  # it followed the cursor to the last page
    assert source.poll() == 0  # the inclusive boundary comes back, and is recognised
    first = next(iter(county.party_members))
    api.upsert_member({**first, "mobile": "13700000000"}, touch=True)
    assert source.poll() == 1  # a new version
    ids = [member_id for member_id, _ in published(party_raw)]
    assert len(ids) == members + 1
    assert len(set(ids)) == members
    again = make_source(api, party_raw, tmp_path)  # a restart resumes from the checkpoint
    assert again.poll() == 0


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (lambda api: api.fail_next(503), "answered 503"),
        (lambda api: api.reset_next(), "connection failed"),
        (lambda api: api.delay_next(3.0), "did not answer in time"),
    ],
)
def test_a_failing_request_is_retried_from_the_checkpoint_and_loses_nothing(
    api: PartyApiServer,
    party_raw: RawTopics,
    county: County,
    tmp_path: Path,
    fault: Any,
    message: str,
) -> None:
    source = make_source(api, party_raw, tmp_path, timeout_seconds=1.0)
    assert source.poll() > 0
    for n in range(20):
        member = county.party_members[n]
        api.upsert_member({**member, "mobile": f"1370000{n:04d}"}, touch=True)
    fault(api)
    with pytest.raises(SourceUnavailable, match=message):
        source.poll()
    source.rewind()  # what the source loop does after a failure
    assert source.poll() == 20
    ids = [member_id for member_id, _ in published(party_raw)]
    assert len(ids) == on_server(county) + 20


def test_429_is_reported_with_its_retry_after_and_a_refused_token_names_the_setting(
    county: County, party_raw: RawTopics, tmp_path: Path
) -> None:
    members, activities = county.party_members, county.party_activities
    with PartyApiServer(members, activities, TOKEN, rate_limit_per_s=1) as limited:
        source = make_source(limited, party_raw, tmp_path / "a", max_requests_per_second=18)
        with pytest.raises(SourceUnavailable, match=r"rate limited \(429\)") as caught:
            source.poll()
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
        refused = make_source(limited, party_raw, tmp_path / "b", token="wrong-token")
        with pytest.raises(SourceUnavailable, match=r"sources\.party\.token") as denied:
            refused.poll()
        assert "wrong-token" not in str(denied.value)


def test_a_member_the_model_refuses_travels_as_json_for_the_dead_letters(
    api: PartyApiServer, party_raw: RawTopics, county: County, tmp_path: Path
) -> None:
    source = make_source(api, party_raw, tmp_path)
    source.poll()
    api.upsert_member({**county.party_members[0], "gender": "X"}, touch=True)
    assert source.poll() == 1
    last = party_raw.records("members")[-1]
    assert last[:1] == b"{"  # JSON text: the route stage validates it and says why


def test_activities_are_published_once_and_a_correction_and_a_void_are_new_versions(
    api: PartyApiServer, party_raw: RawTopics, county: County, tmp_path: Path
) -> None:
    source = make_source(api, party_raw, tmp_path, entities=("members", "activities"))
    activities = county.party_activities
    assert source.poll() == on_server(county) + len(activities)
    assert sorted(published_activities(party_raw)) == sorted(
        (a["activityId"], a["hours"]) for a in activities
    )
    assert source.poll() == 0
    corrected, voided = activities[0], activities[1]
    api.upsert_activity({**corrected, "hours": corrected["hours"] + 0.5}, touch=True)
    api.upsert_activity({**voided, "hours": 0}, touch=True)  # voided: kind unchanged
    assert source.poll() == 2
    last = dict(published_activities(party_raw)[-2:])
    assert last == {corrected["activityId"]: corrected["hours"] + 0.5, voided["activityId"]: 0}
    again = make_source(api, party_raw, tmp_path, entities=("members", "activities"))
    assert again.poll() == 0  # both feeds resume from their own checkpoints


def test_the_loop_waits_as_long_as_retry_after_says_not_its_own_short_backoff(
    county: County, party_raw: RawTopics, tmp_path: Path
) -> None:
    """The API admits one request a second here; a loop ignoring ``Retry-After`` would
    retry every few milliseconds (its back-off is capped at 10 ms below) and be refused
    hundreds of times in the seconds this runs."""
    members = county.party_members[:30]
    with PartyApiServer(members, [], TOKEN, rate_limit_per_s=1) as limited:
        source = make_source(limited, party_raw, tmp_path, max_requests_per_second=18)
        source.max_backoff_seconds = 0.01
        stop = threading.Event()
        loop = threading.Thread(target=source.run, args=(stop,))
        loop.start()
        stop.wait(3.5)
        stop.set()
        loop.join(timeout=10)
        assert not loop.is_alive()
        assert source.health.errors >= 1  # it was refused, and
        assert limited.requests_served <= 12  # waited out each Retry-After of 1 s


# --- property: random interleavings of updates, faults and restarts ---------------------


@pytest.fixture(scope="module")
def ten_members(county: County) -> list[dict[str, Any]]:
    return county.party_members[:10]


@pytest.fixture(scope="module")
def ten_activities(county: County) -> list[dict[str, Any]]:
    return county.party_activities[:10]


PARTY_PLANS = plans(
    ["update", "correct", "void", "poll", "restart", "503", "502", "504", "reset", "slow"], 10
)


@property_settings
@given(plan=PARTY_PLANS)
def test_random_interleavings_publish_every_latest_version_exactly_once(
    ten_members: list[dict[str, Any]],
    ten_activities: list[dict[str, Any]],
    broker: EmbeddedBroker,
    tmp_path: Path,
    plan: list[tuple[str, int]],
) -> None:
    raw = RawTopics(broker.bootstrap, source="party")
    members, activities = ten_members, ten_activities
    directory = tmp_path / secrets.token_hex(4)
    both = ("members", "activities")
    with PartyApiServer(members, activities, TOKEN) as server:
        source = make_source(server, raw, directory, both, timeout_seconds=0.5)
        for action, n in plan:
            if action == "update":
                server.upsert_member({**members[n], "mobile": f"1370000{n:04d}"}, touch=True)
                continue
            if action in ("correct", "void"):
                hours = 0 if action == "void" else activities[n]["hours"] + 0.5
                server.upsert_activity({**activities[n], "hours": hours}, touch=True)
                continue
            if action == "restart":
                source.close()
                source = make_source(server, raw, directory, both, timeout_seconds=0.5)
                continue
            if action in ("503", "502", "504"):
                server.fail_next(int(action))
            elif action == "reset":
                server.reset_next()
            elif action == "slow":
                server.delay_next(1.0)
            poll_as_the_loop_does(source)
        source.poll()
        assert source.poll() == 0
        source.close()
        for entity in both:
            served = httpx.get(
                f"{server.base_url}/api/v2/{entity}",
                params={"updated_since": "1970-01-01T00:00:00+00:00", "limit": 500},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            ).json()["items"]
            key = "memberId" if entity == "members" else "activityId"
            latest = {(item[key], datetime.fromisoformat(item["updatedAt"])) for item in served}
            versions = published_versions(raw, entity, key)
            assert latest <= set(versions)
            assert len(versions) == len(set(versions))


def published_versions(raw: RawTopics, entity: str, key: str) -> list[tuple[str, datetime]]:
    """(key, updatedAt) of every published version of an entity."""
    return [
        (item[key], item["updatedAt"])
        for item in (decode(record)[1] for record in raw.records(entity))
    ]
