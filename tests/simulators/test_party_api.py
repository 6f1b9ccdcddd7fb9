"""The party-building API simulator, driven over real loopback HTTP with httpx.

Also covers the shared plumbing of ``http_base`` (faults, counters, lifecycle).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from gridhub.simulators.http_base import SlidingWindowLimiter
from gridhub.simulators.party_api import PartyApiServer

TOKEN = "dj-token-5f1c"
MEMBERS = "/api/v2/members"
ACTIVITIES = "/api/v2/activities"


def member(member_id: str, updated_at: str, **fields: Any) -> dict[str, Any]:
    return {
        "memberId": member_id,
        "idCard": " 32072319800101002x ",
        "name": "阿依古丽·买买提",
        "gender": "女",
        "birthDate": "1980-01-01",
        "mobile": "139 1234 5678",
        "branchCode": "DZB-0101",
        "branchName": "幸福社区第一党支部",
        "partyGridCode": "DJ-320723100001-02",
        "memberType": "正式党员",
        "joinDate": "2005-07-01",
        "status": "在册",
        "reportCommunityCode": "320723100001",
        "residenceAddress": "伊山镇幸福家园3号楼二单元",
        "updatedAt": updated_at,
        **fields,
    }


def activity(activity_id: str, updated_at: str, hours: float = 2.0) -> dict[str, Any]:
    return {
        "activityId": activity_id,
        "memberId": "M0000001",
        "kind": "志愿服务",
        "hours": hours,
        "partyGridCode": "DJ-320723100001-02",
        "occurredAt": "2026-10-20T09:00:00+08:00",
        "updatedAt": updated_at,
    }


# Two members share each timestamp so that the id breaks ties.
SEED_MEMBERS = [
    member(f"M000000{i}", f"2026-10-22T09:0{i // 2}:00+08:00") for i in reversed(range(7))
]


@pytest.fixture
def server() -> Iterator[PartyApiServer]:
    activities = [activity("A1", "2026-10-22T08:00:00+08:00")]
    with PartyApiServer(SEED_MEMBERS, activities, TOKEN) as running:
        yield running


@pytest.fixture
def client(server: PartyApiServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=5) as http:
        yield http


def pull(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Pages through a whole pull the way a connector would."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(path, params=query).raise_for_status().json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def test_missing_or_wrong_token_is_unauthorized(server: PartyApiServer) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.get(server.base_url + MEMBERS, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "unauthorized"}


def test_unknown_path_is_not_found(client: httpx.Client) -> None:
    assert client.get("/api/v2/grids").status_code == 404


def test_burst_above_limit_gets_429_with_retry_after() -> None:
    with PartyApiServer(SEED_MEMBERS, [], TOKEN, rate_limit_per_s=5) as server:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=server.base_url, headers=headers) as client:
            statuses = [client.get(MEMBERS, params={"limit": 1}).status_code for _ in range(6)]
            assert statuses == [200] * 5 + [429]
            refused = client.get(MEMBERS)
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "1"
            time.sleep(int(refused.headers["Retry-After"]))
            assert client.get(MEMBERS).status_code == 200


def test_limiter_window_slides() -> None:
    now = [100.0]
    limiter = SlidingWindowLimiter(2, clock=lambda: now[0])
    assert limiter.acquire("t") is None
    now[0] = 100.5
    assert limiter.acquire("t") is None
    assert limiter.acquire("t") == 1
    assert limiter.acquire("other") is None
    now[0] = 101.0  # the first hit left the window, the second is still in it
    assert limiter.acquire("t") is None
    assert limiter.acquire("t") == 1


def test_keyset_paging_returns_every_record_once_in_order(client: httpx.Client) -> None:
    first = client.get(MEMBERS, params={"limit": 3}).json()
    assert len(first["items"]) == 3
    assert first["next_cursor"] is not None
    items = pull(client, MEMBERS, limit=3)
    keys = [(item["updatedAt"], item["memberId"]) for item in items]
    assert keys == sorted((m["updatedAt"], m["memberId"]) for m in SEED_MEMBERS)
    assert items[0] == member("M0000000", "2026-10-22T09:00:00+08:00")


def test_next_cursor_is_null_when_the_last_page_is_exactly_full(client: httpx.Client) -> None:
    since = "2026-10-22T09:01:00+08:00"  # leaves M0000002..M0000006: five records
    first = client.get(MEMBERS, params={"updated_since": since, "limit": 3}).json()
    second = client.get(
        MEMBERS, params={"updated_since": since, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [item["memberId"] for item in second["items"]] == ["M0000005", "M0000006"]
    assert second["next_cursor"] is None


def test_updated_since_is_inclusive(client: httpx.Client) -> None:
    items = pull(client, MEMBERS, updated_since="2026-10-22T09:03:00+08:00")
    assert [item["memberId"] for item in items] == ["M0000006"]
    same_instant = pull(client, MEMBERS, updated_since="2026-10-22T01:03:00Z")
    assert same_instant == items


def test_activities_page_the_same_way(server: PartyApiServer, client: httpx.Client) -> None:
    server.upsert_activity(activity("A2", "2026-10-22T08:30:00+08:00"))
    voided = server.upsert_activity(
        activity("A1", "2026-10-22T08:00:00+08:00", hours=0), touch=True
    )
    items = pull(client, ACTIVITIES, limit=1)
    assert [item["activityId"] for item in items] == ["A2", "A1"]
    assert items[1] == voided
    assert voided["hours"] == 0


def test_record_updated_while_paging_moves_to_a_later_page(
    server: PartyApiServer, client: httpx.Client
) -> None:
    first = client.get(MEMBERS, params={"limit": 2}).json()
    assert [item["memberId"] for item in first["items"]] == ["M0000000", "M0000001"]
    moved = server.upsert_member(member("M0000000", "", mobile="13912345678"), touch=True)
    assert moved["updatedAt"].endswith("+08:00")
    rest = pull(client, MEMBERS, limit=2, cursor=first["next_cursor"])
    assert [item["memberId"] for item in rest] == [f"M000000{i}" for i in (2, 3, 4, 5, 6, 0)]
    assert rest[-1]["mobile"] == "13912345678"
    next_pull = pull(client, MEMBERS, updated_since=rest[-1]["updatedAt"])
    assert [item["memberId"] for item in next_pull] == ["M0000000"]


@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "2.5"])
def test_limit_out_of_range_is_bad_request(client: httpx.Client, limit: str) -> None:
    response = client.get(MEMBERS, params={"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["error"]


def test_limit_bounds_are_accepted(client: httpx.Client) -> None:
    assert len(client.get(MEMBERS, params={"limit": 1}).json()["items"]) == 1
    assert len(client.get(MEMBERS, params={"limit": 500}).json()["items"]) == 7
    assert len(client.get(MEMBERS).json()["items"]) == 7


def test_cursor_must_keep_its_updated_since(client: httpx.Client) -> None:
    since = "2026-10-22T09:00:00+08:00"
    cursor = client.get(MEMBERS, params={"updated_since": since, "limit": 2}).json()["next_cursor"]
    ok = client.get(MEMBERS, params={"updated_since": since, "limit": 2, "cursor": cursor})
    assert ok.status_code == 200
    for params in (
        {"updated_since": "2026-10-22T09:01:00+08:00", "cursor": cursor},
        {"updated_since": "2026-10-22T01:00:00Z", "cursor": cursor},
        {"cursor": cursor},
    ):
        response = client.get(MEMBERS, params=params)
        assert response.status_code == 400
        assert "updated_since" in response.json()["error"]


def test_cursor_is_bound_to_its_feed_and_must_be_well_formed(client: httpx.Client) -> None:
    cursor = client.get(MEMBERS, params={"limit": 1}).json()["next_cursor"]
    assert client.get(ACTIVITIES, params={"cursor": cursor}).status_code == 400
    forged = base64.urlsafe_b64encode(json.dumps({"feed": "members"}).encode()).decode()
    for bad in ("not base64!", forged, base64.b64encode(b"[1]").decode()):
        response = client.get(MEMBERS, params={"cursor": bad})
        assert response.status_code == 400
        assert response.json() == {"error": "invalid cursor"}


@pytest.mark.parametrize(
    "target",
    [
        MEMBERS + "?updated_since=2026-10-22T09:00:00",  # no offset
        MEMBERS + "?updated_since=2026-10-22T09:00:00+08:00",  # raw '+' decodes to a space
        MEMBERS + "?updated_since=yesterday",
        MEMBERS + "?limit=2&limit=3",
    ],
)
def test_malformed_parameters_are_bad_request(client: httpx.Client, target: str) -> None:
    response = client.get(target)
    assert response.status_code == 400
    assert response.json()["error"]


def test_upsert_rejects_records_it_could_not_page(server: PartyApiServer) -> None:
    with pytest.raises(ValueError, match="memberId"):
        server.upsert_member({"updatedAt": "2026-10-22T09:00:00+08:00"})
    with pytest.raises(ValueError, match="offset"):
        server.upsert_member(member("M9", "2026-10-22T09:00:00"))


def test_fail_next_answers_gateway_errors_then_recovers(
    server: PartyApiServer, client: httpx.Client
) -> None:
    server.fail_next(503, times=2)
    server.fail_next(502)
    statuses = [client.get(MEMBERS).status_code for _ in range(4)]
    assert statuses == [503, 503, 502, 200]
    server.fail_next(504)
    response = httpx.get(server.base_url + ACTIVITIES)  # before auth, any endpoint
    assert response.status_code == 504
    assert response.headers["content-type"] == "text/html"
    assert server.requests_served == 5
    assert server.request_paths == [MEMBERS] * 4 + [ACTIVITIES]


def test_delay_times_out_a_client_while_other_requests_are_served(
    server: PartyApiServer,
) -> None:
    server.delay_next(2.0)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    slow_client = httpx.Client(base_url=server.base_url, headers=headers, timeout=1.2)
    fast_client = httpx.Client(base_url=server.base_url, headers=headers, timeout=5)
    with slow_client, fast_client, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(slow_client.get, MEMBERS)
        deadline = time.monotonic() + 2
        while server.requests_served == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        assert fast_client.get(MEMBERS, params={"limit": 1}).status_code == 200
        assert time.monotonic() - started < 1.0
        assert not slow.done()
        with pytest.raises(httpx.ReadTimeout):
            slow.result()


def test_reset_cuts_the_body_after_the_headers(
    server: PartyApiServer, client: httpx.Client
) -> None:
    server.reset_next()
    with client.stream("GET", MEMBERS) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.TransportError):
            response.read()
    server.reset_next()
    with pytest.raises(httpx.TransportError):
        client.get(MEMBERS)
    assert client.get(MEMBERS).status_code == 200


def test_stop_closes_the_port_and_wakes_delayed_requests() -> None:
    server = PartyApiServer([], [], TOKEN).start()
    base_url = server.base_url
    server.delay_next(30)
    errors: list[Exception] = []

    def wait_for_answer() -> None:
        try:
            httpx.get(base_url + MEMBERS, timeout=10)
        except httpx.TransportError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait_for_answer)
    waiter.start()
    while server.requests_served == 0:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    waiter.join()
    assert time.monotonic() - started < 2
    assert len(errors) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(base_url + MEMBERS)
    with pytest.raises(RuntimeError):
        _ = server.base_url
