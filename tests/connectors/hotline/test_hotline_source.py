"""The 12345 connector against the API simulator on loopback: signed requests, 24 h
windows, offset pages that skip a moving ticket, tickets arriving 2 minutes late,
business errors inside HTTP 200, a platform clock that is off."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gridhub.connectors.base.checkpoint import Checkpoint, FileCheckpointStore
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.hotline.source import HotlineSource
from gridhub.schemas.serde import decode
from gridhub.simulators.county import County, generate_county
from gridhub.simulators.hotline_api import HotlineApiServer
from hypothesis import given
from pydantic import SecretStr

from gridhub.config import HotlineSourceConfig
from gridhub.errors import SourceUnavailable
from gridhub.runtime.broker import EmbeddedBroker
from tests.connectors.conftest import (
    RawTopics,
    plans,
    poll_as_the_loop_does,
    property_settings,
)

KEY, SECRET = "county-320723", "hotline-secret-0123456789"
PAGE = 3


@pytest.fixture(scope="module")
def tickets() -> list[dict[str, Any]]:
    """The generator's tickets, restamped over the last five days (six 24 h windows)."""
    now = int(time.time() * 1000)
    county: County = generate_county(300, seed=4)
    return [
        {**ticket, "updateTime": now - 60_000 - n * 5 * 3_600_000}
        for n, ticket in enumerate(county.hotline_tickets[:24])
    ]


@pytest.fixture
def api(tickets: list[dict[str, Any]]) -> Iterator[HotlineApiServer]:
    with HotlineApiServer(tickets, KEY, SECRET) as server:
        yield server


@pytest.fixture
def hotline_raw(broker: EmbeddedBroker) -> RawTopics:
    return RawTopics(broker.bootstrap, source="hotline")


def make_source(
    api: HotlineApiServer, raw: RawTopics, directory: Path, **config: Any
) -> HotlineSource:
    settings = HotlineSourceConfig(
        base_url=api.base_url,
        app_key=KEY,
        app_secret=SecretStr(config.pop("app_secret", SECRET)),
        page_size=PAGE,
        backfill_days=6,
        max_requests_per_second=18,
        poll_seconds=0.02,
        **config,
    )
    return HotlineSource(
        settings,
        EnvelopePublisher(raw.bootstrap, raw.topics),
        {"tickets": Checkpoint(FileCheckpointStore(directory), "hotline", "tickets")},
        ack_on_publish=True,
    )


def published(raw: RawTopics) -> list[tuple[str, int]]:
    """(ticketNo, updateTime) of every published ticket."""
    out = []
    for record in raw.records("tickets"):
        ticket = decode(record)[1] if record[:1] == b"\x00" else json.loads(record)
        out.append((ticket["ticketNo"], ticket["updateTime"]))
    return out


def test_every_ticket_is_published_once_over_windows_pages_and_restarts(
    api: HotlineApiServer, hotline_raw: RawTopics, tickets: list[dict[str, Any]], tmp_path: Path
) -> None:
    source = make_source(api, hotline_raw, tmp_path)
    assert source.poll() == len(tickets)  # six windows of 24 h, pages of 3
    assert source.poll() == 0  # the lookback reads the newest again: recognised
    assert make_source(api, hotline_raw, tmp_path).poll() == 0  # resumed from the checkpoint
    assert sorted(published(hotline_raw)) == sorted(
        (t["ticketNo"], t["updateTime"]) for t in tickets
    )


def test_a_ticket_arriving_two_minutes_late_is_still_read(
    api: HotlineApiServer, hotline_raw: RawTopics, tickets: list[dict[str, Any]], tmp_path: Path
) -> None:
    source = make_source(api, hotline_raw, tmp_path)
    source.poll()
    now = int(time.time() * 1000)
    late = {**tickets[0], "ticketNo": "12345-LATE", "updateTime": now - 110_000}
    api.upsert_ticket(late, visible_at_ms=now + 1_000)  # stamped 110 s ago, visible in 1 s
    fresh = {**tickets[1], "ticketNo": "12345-FRESH", "updateTime": now}
    api.upsert_ticket(fresh)
    assert source.poll() == 1  # the fresh one; the late one is not visible yet
    time.sleep(1.1)
    assert source.poll() == 1  # read through the lookback
    assert ("12345-LATE", late["updateTime"]) in published(hotline_raw)


def test_a_ticket_moving_while_a_window_is_paged_makes_no_other_ticket_be_missed(
    api: HotlineApiServer, hotline_raw: RawTopics, tickets: list[dict[str, Any]], tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    window = [
        {**tickets[0], "ticketNo": f"12345-W{n}", "updateTime": now - 10_000 + n} for n in range(8)
    ]
    for ticket in window:
        api.upsert_ticket(ticket)
    source = make_source(api, hotline_raw, tmp_path)
    page: Callable[..., dict[str, Any]] = source.client.page
    moved = {"done": False}

    def page_then_move(start: int, end: int, page_no: int, size: int) -> dict[str, Any]:
        data = page(start, end, page_no, size)
        if page_no == 1 and not moved["done"] and start <= now < end:
            # the first ticket of the page just read is updated: it moves to the end,
            # and every later ticket moves up one place, so the next page skips one
            first = data["list"][0]
            api.upsert_ticket({**first, "status": "办结", "updateTime": now + 5_000})
            moved["done"] = True
        return data

    source.client.page = page_then_move  # type: ignore[method-assign]
    source.poll()
    assert moved["done"]
    read = {ticket_no for ticket_no, _ in published(hotline_raw)}
    assert {t["ticketNo"] for t in window} <= read


@pytest.mark.parametrize(
    ("arm", "message"),
    [
        (lambda api: api.business_error_next("5001"), "busy"),
        (lambda api: api.business_error_next("4002"), "code 4002"),
        (lambda api: api.bad_params_next(), "answered 400"),
        (lambda api: api.fail_next(502), "answered 502"),
        (lambda api: api.fail_next(504), "answered 504"),
        (lambda api: api.reset_next(), "connection failed"),
        (lambda api: api.delay_next(3.0), "did not answer in time"),
    ],
)
def test_errors_are_retried_from_the_checkpoint(
    api: HotlineApiServer,
    hotline_raw: RawTopics,
    tickets: list[dict[str, Any]],
    tmp_path: Path,
    arm: Callable[[HotlineApiServer], None],
    message: str,
) -> None:
    source = make_source(api, hotline_raw, tmp_path, timeout_seconds=1.0)
    arm(api)
    with pytest.raises(SourceUnavailable, match=message):
        source.poll()
    source.rewind()
    assert source.poll() == len(tickets)


def test_429_is_reported_with_its_retry_after(
    hotline_raw: RawTopics, tickets: list[dict[str, Any]], tmp_path: Path
) -> None:
    with HotlineApiServer(tickets, KEY, SECRET, rate_limit_per_s=1) as limited:
        source = make_source(limited, hotline_raw, tmp_path)
        with pytest.raises(SourceUnavailable, match=r"rate limited \(429\)") as caught:
            for _ in range(3):  # the first request may fall into a fresh second
                source.poll()
                source.rewind()
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1


def test_refusals_say_what_to_fix_without_the_secret(
    hotline_raw: RawTopics, tickets: list[dict[str, Any]], tmp_path: Path
) -> None:
    skewed = HotlineApiServer(tickets, KEY, SECRET, clock=lambda: time.time() + 900)
    with skewed:
        late_clock = make_source(skewed, hotline_raw, tmp_path / "a")
        with pytest.raises(SourceUnavailable, match="clock_offset_seconds"):
            late_clock.poll()
        corrected = make_source(skewed, hotline_raw, tmp_path / "b", clock_offset_seconds=900)
        assert corrected.poll() == len(tickets)
        wrong = make_source(
            skewed,
            hotline_raw,
            tmp_path / "c",
            app_secret="not-the-secret",
            clock_offset_seconds=900,
        )
        with pytest.raises(SourceUnavailable, match="app_secret") as refused:
            wrong.poll()
        assert "not-the-secret" not in str(refused.value)


# --- property: random interleavings of updates, faults and restarts ---------------------

HOTLINE_PLANS = plans(["update", "update", "poll", "restart", "5001", "502", "reset"], 8)


@property_settings
@given(plan=HOTLINE_PLANS)
def test_random_interleavings_publish_every_latest_ticket_version_exactly_once(
    tickets: list[dict[str, Any]],
    broker: EmbeddedBroker,
    tmp_path: Path,
    plan: list[tuple[str, int]],
) -> None:
    raw = RawTopics(broker.bootstrap, source="hotline")
    directory = tmp_path / secrets.token_hex(4)
    current = {t["ticketNo"]: t for t in tickets[:8]}
    with HotlineApiServer(list(current.values()), KEY, SECRET) as server:
        source = make_source(server, raw, directory)
        for step, (action, n) in enumerate(plan):
            if action == "update":
                ticket = list(current.values())[n]
                moved = {**ticket, "status": "派单", "updateTime": int(time.time() * 1000) + step}
                server.upsert_ticket(moved)
                current[moved["ticketNo"]] = moved
                continue
            if action == "restart":
                source.close()
                source = make_source(server, raw, directory)
                continue
            if action == "5001":
                server.business_error_next("5001")
            elif action == "502":
                server.fail_next(502)
            elif action == "reset":
                server.reset_next()
            poll_as_the_loop_does(source)
        source.poll()
        assert source.poll() == 0
        source.close()
    latest = {(t["ticketNo"], t["updateTime"]) for t in current.values()}
    versions = published(raw)
    assert latest <= set(versions)
    assert len(versions) == len(set(versions))
