"""The 12345 hotline API simulator, driven over real loopback HTTP with httpx.

Signatures are computed here with ``hmac`` directly, independently of the
simulator's own ``expected_signature``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from gridhub.simulators.hotline_api import HotlineApiServer, expected_signature

APP_KEY = "county-320723"
APP_SECRET = "s3cr3t-9b2e"
TICKETS = "/open/api/v1/tickets"
NOW_MS = 1_792_000_000_000
HOUR_MS = 3_600_000


class FakeClock:
    """A server clock the test moves by hand."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


def ticket(number: int, update_time: int, **fields: Any) -> dict[str, Any]:
    return {
        "ticketNo": f"12345-20261022-{number:06d}",
        "createTime": update_time - HOUR_MS,
        "updateTime": update_time,
        "callerName": "王先生",
        "callerPhone": "139****5678",
        "callerIdCard": None,
        "address": "伊山镇幸福家园3号楼二单元",
        "lng": None,
        "lat": None,
        "category": "城乡建设",
        "subcategory": "物业管理",
        "content": "楼道灯坏了",
        "status": "受理",
        "handleDept": None,
        "deadline": None,
        "finishTime": None,
        "satisfaction": None,
        "urgent": 0,
        **fields,
    }


SEED = [ticket(n, NOW_MS - (10 - n) * 60_000) for n in range(1, 6)]  # 9..5 minutes ago


def sign(secret: str, timestamp: str, target: str, key: str = APP_KEY) -> str:
    message = (key + timestamp + target).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def window_target(start_ms: int = NOW_MS - HOUR_MS, end_ms: int = NOW_MS, **params: Any) -> str:
    return TICKETS + "?" + urlencode({"startTime": start_ms, "endTime": end_ms, **params})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS)


@pytest.fixture
def server(clock: FakeClock) -> Iterator[HotlineApiServer]:
    with HotlineApiServer(SEED, APP_KEY, APP_SECRET, clock=clock) as running:
        yield running


@pytest.fixture
def client(server: HotlineApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5) as http:
        yield http


def signed_get(
    client: httpx.Client,
    target: str,
    *,
    timestamp_ms: int = NOW_MS,
    secret: str = APP_SECRET,
    key: str = APP_KEY,
    signed_target: str | None = None,
) -> httpx.Response:
    timestamp = str(timestamp_ms)
    headers = {
        "X-App-Key": key,
        "X-Timestamp": timestamp,
        "X-Sign": sign(secret, timestamp, signed_target or target, key),
    }
    return client.get(target, headers=headers)


def numbers(response: httpx.Response) -> list[int]:
    return [int(item["ticketNo"][-6:]) for item in response.json()["data"]["list"]]


def test_signed_request_succeeds_newest_first(client: httpx.Client) -> None:
    response = signed_get(client, window_target())
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "0000"
    assert body["message"] == "success"
    assert body["data"]["total"] == 5
    assert body["data"]["pageNo"] == 1
    assert body["data"]["pageSize"] == 20
    assert body["data"]["list"][0] == SEED[-1]
    assert numbers(response) == [5, 4, 3, 2, 1]


def test_module_signature_matches_an_independent_hmac() -> None:
    target = window_target()
    assert expected_signature(APP_KEY, APP_SECRET, NOW_MS, target) == sign(
        APP_SECRET, str(NOW_MS), target
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"secret": "wrong-secret"}, "invalid signature"),
        ({"key": "county-000000"}, "unknown app key"),
        ({"timestamp_ms": NOW_MS + 301_000}, "timestamp out of range"),
        ({"timestamp_ms": NOW_MS - 301_000}, "timestamp out of range"),
        ({"signed_target": window_target(pageNo=1)}, "invalid signature"),
    ],
)
def test_bad_credentials_are_rejected_saying_why(
    client: httpx.Client, overrides: dict[str, Any], reason: str
) -> None:
    response = signed_get(client, window_target(pageNo=2), **overrides)
    assert response.status_code == 401
    assert response.json() == {"code": "401", "message": reason}


def test_skew_up_to_the_limit_is_accepted(client: httpx.Client) -> None:
    for timestamp_ms in (NOW_MS + 300_000, NOW_MS - 300_000):
        assert signed_get(client, window_target(), timestamp_ms=timestamp_ms).status_code == 200


def test_skew_is_measured_against_the_server_clock(client: httpx.Client, clock: FakeClock) -> None:
    clock.now_ms += 10 * 60_000
    response = signed_get(client, window_target())
    assert response.json()["message"] == "timestamp out of range"
    assert signed_get(client, window_target(), timestamp_ms=clock.now_ms).status_code == 200


def test_missing_headers_and_upper_case_sign_are_rejected(client: httpx.Client) -> None:
    target = window_target()
    timestamp = str(NOW_MS)
    good = {
        "X-App-Key": APP_KEY,
        "X-Timestamp": timestamp,
        "X-Sign": sign(APP_SECRET, timestamp, target),
    }
    without_sign = {name: value for name, value in good.items() if name != "X-Sign"}
    response = client.get(target, headers=without_sign)
    assert response.status_code == 401
    assert response.json()["message"] == "missing header X-Sign"
    upper = client.get(target, headers={**good, "X-Sign": good["X-Sign"].upper()})
    assert upper.json()["message"] == "invalid signature"
    assert client.get(target, headers={**good, "X-Timestamp": "soon"}).status_code == 401


def test_signature_covers_the_target_exactly_as_sent(client: httpx.Client) -> None:
    encoded = window_target() + "&note=%E5%B9%B8%E7%A6%8F"
    assert signed_get(client, encoded).status_code == 200
    decoded = window_target() + "&note=幸福"
    # httpx sends the percent-encoded form, so a signature over the decoded text fails.
    assert signed_get(client, encoded, signed_target=decoded).status_code == 401


def test_window_wider_than_24_hours_is_business_error_4002(client: httpx.Client) -> None:
    day_ms = 24 * HOUR_MS
    response = signed_get(client, window_target(NOW_MS - day_ms - 1, NOW_MS))
    assert response.status_code == 200
    assert response.json() == {"code": "4002", "message": "查询时间跨度不能超过24小时"}
    exactly_a_day = signed_get(client, window_target(NOW_MS - day_ms, NOW_MS))
    assert exactly_a_day.json()["code"] == "0000"


@pytest.mark.parametrize(
    "params",
    [
        {"endTime": NOW_MS},
        {"startTime": NOW_MS - HOUR_MS},
        {"startTime": "yesterday", "endTime": NOW_MS},
        {"startTime": NOW_MS, "endTime": NOW_MS - 1},
        {"startTime": NOW_MS - HOUR_MS, "endTime": NOW_MS, "pageSize": 0},
        {"startTime": NOW_MS - HOUR_MS, "endTime": NOW_MS, "pageSize": 201},
        {"startTime": NOW_MS - HOUR_MS, "endTime": NOW_MS, "pageNo": 0},
        {"startTime": NOW_MS - HOUR_MS, "endTime": NOW_MS, "pageNo": "1.5"},
        {"startTime": NOW_MS - HOUR_MS, "endTime": NOW_MS, "orderBy": "createTime_desc"},
        {"startTime": [NOW_MS - HOUR_MS, NOW_MS - 1], "endTime": NOW_MS},
    ],
)
def test_malformed_parameters_are_4000(client: httpx.Client, params: dict[str, Any]) -> None:
    response = signed_get(client, TICKETS + "?" + urlencode(params, doseq=True))
    assert response.status_code == 400
    assert response.json() == {"code": "4000", "message": "参数错误"}


def test_window_is_start_inclusive_end_exclusive(client: httpx.Client) -> None:
    third = SEED[2]["updateTime"]
    assert numbers(signed_get(client, window_target(third, third + 1))) == [3]
    assert numbers(signed_get(client, window_target(third - 1, third))) == []


def test_pages_by_offset_in_either_order(client: httpx.Client) -> None:
    pages = [
        numbers(signed_get(client, window_target(orderBy="updateTime_asc", pageSize=2, pageNo=n)))
        for n in (1, 2, 3, 4)
    ]
    assert pages == [[1, 2], [3, 4], [5], []]
    last = signed_get(client, window_target(pageSize=200, pageNo=1)).json()["data"]
    assert last["pageSize"] == 200
    assert last["total"] == 5


def test_ticket_moving_between_pages_is_skipped(
    server: HotlineApiServer, client: httpx.Client
) -> None:
    asc = {"orderBy": "updateTime_asc", "pageSize": 2}
    seen = numbers(signed_get(client, window_target(pageNo=1, **asc)))
    server.upsert_ticket({**SEED[0], "updateTime": NOW_MS - 1000, "status": "派单"})
    seen += numbers(signed_get(client, window_target(pageNo=2, **asc)))
    seen += numbers(signed_get(client, window_target(pageNo=3, **asc)))
    assert seen == [1, 2, 4, 5, 1]  # ticket 3 slid back to page 1 and was never seen


def test_ticket_moving_between_pages_repeats_another(
    server: HotlineApiServer, client: httpx.Client
) -> None:
    seen = numbers(signed_get(client, window_target(pageNo=1, pageSize=2)))
    server.upsert_ticket({**SEED[2], "updateTime": NOW_MS - 1000, "status": "处置中"})
    seen += numbers(signed_get(client, window_target(pageNo=2, pageSize=2)))
    assert seen == [5, 4, 4, 2]  # ticket 4 repeats; the moved ticket 3 is now on page 1


def test_late_ticket_is_invisible_until_its_visible_time(
    server: HotlineApiServer, client: httpx.Client, clock: FakeClock
) -> None:
    late = ticket(6, NOW_MS - 30_000)
    server.upsert_ticket(late, visible_at_ms=NOW_MS + 60_000)
    target = window_target(NOW_MS - HOUR_MS, NOW_MS + HOUR_MS, pageSize=1)
    assert signed_get(client, target).json()["data"]["total"] == 5
    clock.now_ms = NOW_MS + 59_999
    assert signed_get(client, target, timestamp_ms=clock.now_ms).json()["data"]["total"] == 5
    clock.now_ms = NOW_MS + 60_000
    body = signed_get(client, target, timestamp_ms=clock.now_ms).json()["data"]
    assert body["total"] == 6
    assert body["list"] == [late]


def test_late_update_keeps_serving_the_previous_version(clock: FakeClock) -> None:
    tickets = [{**ticket(7, NOW_MS - 5000), "_visible_at": NOW_MS + 1000}]
    server = HotlineApiServer(tickets, APP_KEY, APP_SECRET, clock=clock)
    with server, httpx.Client(base_url=server.base_url) as http:
        assert signed_get(http, window_target()).json()["data"]["total"] == 0
        clock.now_ms = NOW_MS + 1000
        first = signed_get(http, window_target(), timestamp_ms=clock.now_ms).json()
        assert first["data"]["list"] == [ticket(7, NOW_MS - 5000)]
        update = ticket(7, NOW_MS + 2000, status="办结")
        server.upsert_ticket(update, visible_at_ms=NOW_MS + 100_000)
        end = NOW_MS + HOUR_MS
        target = window_target(end_ms=end)
        still_old = signed_get(http, target, timestamp_ms=clock.now_ms).json()["data"]
        assert still_old["list"][0]["status"] == "受理"
        clock.now_ms = NOW_MS + 100_000
        arrived = signed_get(http, target, timestamp_ms=clock.now_ms).json()["data"]
        assert arrived["list"] == [update]


def test_upsert_refuses_arrival_later_than_the_spec_allows(server: HotlineApiServer) -> None:
    late = ticket(8, NOW_MS)
    server.upsert_ticket(late, visible_at_ms=NOW_MS + 120_000)
    with pytest.raises(ValueError, match="2 minutes"):
        server.upsert_ticket(late, visible_at_ms=NOW_MS + 120_001)
    with pytest.raises(ValueError, match="updateTime"):
        server.upsert_ticket({"ticketNo": "12345-x", "updateTime": "yesterday"})


def test_business_error_5001_is_injected_inside_http_200(
    server: HotlineApiServer, client: httpx.Client
) -> None:
    server.business_error_next(times=2)
    for _ in range(2):
        response = signed_get(client, window_target())
        assert response.status_code == 200
        assert response.json() == {"code": "5001", "message": "系统繁忙，请稍后再试"}
    assert signed_get(client, window_target()).json()["code"] == "0000"
    with pytest.raises(ValueError):
        server.business_error_next("9999")


def test_burst_above_limit_gets_429_with_retry_after(clock: FakeClock) -> None:
    server = HotlineApiServer(SEED, APP_KEY, APP_SECRET, rate_limit_per_s=3, clock=clock)
    with server, httpx.Client(base_url=server.base_url) as http:
        statuses = [signed_get(http, window_target()).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = signed_get(http, window_target())
        assert refused.headers["Retry-After"] == "1"


def test_transport_faults_and_counters(server: HotlineApiServer, client: httpx.Client) -> None:
    server.fail_next(502)
    server.reset_next()
    assert signed_get(client, window_target()).status_code == 502
    with pytest.raises(httpx.TransportError):
        signed_get(client, window_target())
    assert signed_get(client, window_target()).status_code == 200
    assert server.requests_served == 3
    assert server.request_paths == [window_target()] * 3
