"""Simulator of the 12345 hotline open API (12345 政务服务便民热线 工单系统).

Follows ``spec/sources/hotline-12345.md``: ``GET /open/api/v1/tickets`` signed
with ``X-App-Key``, ``X-Timestamp`` and ``X-Sign``; a time window of at most
24 h (``startTime <= updateTime < endTime``); offset paging with ``pageNo`` and
``pageSize``; business errors inside HTTP 200.

The nasty parts are deliberate:

- Paging is by offset over live data: a ticket updated between two page
  requests moves, so a client paging a window can skip or repeat tickets.
- Late arrival: a ticket version can be hidden until the server clock reaches
  its ``visible_at`` (at most 2 minutes after its ``updateTime``). Until then the
  previous version, if any, is still served, as a lagging replica would.
- The server clock is injectable, so signature skew and late arrival are tested
  without waiting. The rate limit runs on the real monotonic clock.

HTTP-level rejections other than ``400`` carry the platform's body shape with a
message saying what was wrong, e.g. ``{"code": "401", "message": "invalid signature"}``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gridhub.simulators.http_base import ApiRequest, ApiResponse, LoopbackApiServer

TICKETS_PATH = "/open/api/v1/tickets"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200
MAX_WINDOW_MS = 24 * 60 * 60 * 1000
MAX_ARRIVAL_LAG_MS = 2 * 60 * 1000
VISIBLE_AT_KEY = "_visible_at"

BUSINESS_MESSAGES = {
    "5001": "系统繁忙，请稍后再试",
    "4002": "查询时间跨度不能超过24小时",
}
_BAD_PARAMS = ApiResponse.of_json(400, {"code": "4000", "message": "参数错误"})
_WINDOW_TOO_WIDE = ApiResponse.of_json(200, {"code": "4002", "message": BUSINESS_MESSAGES["4002"]})
_DIGITS = re.compile(r"[0-9]+")


def expected_signature(app_key: str, app_secret: str, timestamp_ms: int | str, target: str) -> str:
    """Computes ``X-Sign`` the way the platform checks it.

    Args:
        app_key: the county's app key.
        app_secret: the app secret, the HMAC key.
        timestamp_ms: ``X-Timestamp``, epoch milliseconds, as sent.
        target: the request path with its query string exactly as sent.

    Returns:
        Lower-case hex HMAC-SHA256 of ``app_key + timestamp + target`` (UTF-8).
    """
    message = f"{app_key}{timestamp_ms}{target}".encode("utf-8", "surrogateescape")
    return hmac.new(app_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


class _BadParams(ValueError):
    """A parameter the platform answers with ``4000 参数错误``."""


@dataclass(frozen=True)
class _TicketQuery:
    start_ms: int
    end_ms: int
    page_no: int
    page_size: int
    descending: bool

    @classmethod
    def parse(cls, query: Mapping[str, list[str]]) -> _TicketQuery:
        start_ms = _integer(query, "startTime", default=None)
        end_ms = _integer(query, "endTime", default=None)
        page_no = _integer(query, "pageNo", default=1)
        page_size = _integer(query, "pageSize", default=DEFAULT_PAGE_SIZE)
        order = _single(query, "orderBy") or "updateTime_desc"
        if (
            end_ms < start_ms
            or page_no < 1
            or not 1 <= page_size <= MAX_PAGE_SIZE
            or order not in ("updateTime_desc", "updateTime_asc")
        ):
            raise _BadParams
        return cls(start_ms, end_ms, page_no, page_size, order == "updateTime_desc")


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name, [])
    if len(values) > 1:
        raise _BadParams
    return values[0] if values else None


def _integer(query: Mapping[str, list[str]], name: str, *, default: int | None) -> int:
    text = _single(query, name)
    if text is None and default is not None:
        return default
    if text is None or not _DIGITS.fullmatch(text):
        raise _BadParams
    return int(text)


@dataclass(frozen=True)
class _Version:
    """One stored version of a ticket; ``visible_at_ms`` of ``None`` means at once."""

    visible_at_ms: int | None
    ticket: dict[str, Any]


class HotlineApiServer(LoopbackApiServer):
    """The 12345 open API on loopback, over tickets held in memory."""

    def __init__(
        self,
        tickets: list[dict[str, Any]],
        app_key: str,
        app_secret: str,
        max_skew_s: int = 300,
        rate_limit_per_s: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Loads the tickets; call :meth:`start` (or use ``with``) to serve them.

        Args:
            tickets: ticket dicts shaped as the API serves them (``ticketNo`` and an
                integer ``updateTime`` required); an optional ``_visible_at`` key
                (epoch ms) hides the ticket until then and is never served.
            app_key: the one app key the platform accepts.
            app_secret: its secret.
            max_skew_s: largest accepted distance between ``X-Timestamp`` and the
                server clock.
            rate_limit_per_s: requests admitted per app key in a sliding second.
            clock: the server clock in epoch seconds; drives skew and visibility.
        """
        super().__init__(rate_limit_per_s=rate_limit_per_s)
        if not app_key or not app_secret:
            raise ValueError("app_key and app_secret must not be empty")
        self._app_key = app_key
        self._app_secret = app_secret
        self._max_skew_ms = max_skew_s * 1000
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: dict[str, list[_Version]] = {}
        for ticket in tickets:
            self.upsert_ticket(ticket)

    def upsert_ticket(self, ticket: Mapping[str, Any], visible_at_ms: int | None = None) -> None:
        """Adds or updates a ticket while the server runs.

        Args:
            ticket: the ticket, keyed by ``ticketNo``.
            visible_at_ms: when this version reaches the API (epoch ms); defaults to
                the ticket's ``_visible_at`` key, else at once. Until then the
                previous version, if any, is served.

        Raises:
            ValueError: if the ticket lacks its key or ``updateTime``, or would arrive
                more than 2 minutes after its ``updateTime`` (beyond the spec).
        """
        ticket_no = ticket.get("ticketNo")
        update_time = ticket.get("updateTime")
        if not isinstance(ticket_no, str) or not ticket_no:
            raise ValueError("ticket needs a non-empty string ticketNo")
        if not isinstance(update_time, int) or isinstance(update_time, bool):
            raise ValueError(f"ticket {ticket_no} needs an integer updateTime (epoch ms)")
        if visible_at_ms is None:
            visible_at_ms = ticket.get(VISIBLE_AT_KEY)
        if visible_at_ms is not None and not isinstance(visible_at_ms, int):
            raise ValueError(f"ticket {ticket_no} needs an integer visible time (epoch ms)")
        if visible_at_ms is not None and visible_at_ms > update_time + MAX_ARRIVAL_LAG_MS:
            raise ValueError(f"ticket {ticket_no} would arrive more than 2 minutes late")
        stored = {
            key: copy.deepcopy(value) for key, value in ticket.items() if key != VISIBLE_AT_KEY
        }
        version = _Version(visible_at_ms, stored)
        with self._lock:
            if visible_at_ms is None or visible_at_ms <= self._now_ms():
                self._versions[ticket_no] = [version]
            else:
                self._versions.setdefault(ticket_no, []).append(version)

    def business_error_next(self, code: str = "5001", times: int = 1) -> None:
        """Makes the next ``times`` requests get a business error inside HTTP 200.

        Args:
            code: ``"5001"`` (busy, retry later) or ``"4002"`` (window too wide).
            times: how many requests to answer so.
        """
        if code not in BUSINESS_MESSAGES:
            raise ValueError(f"the spec knows business errors {sorted(BUSINESS_MESSAGES)}")
        body = {"code": code, "message": BUSINESS_MESSAGES[code]}
        self._respond_next(ApiResponse.of_json(200, body), times)

    def bad_params_next(self, times: int = 1) -> None:
        """Makes the next ``times`` requests get ``400`` with ``{"code": "4000"}``, as the
        platform answers parameters it cannot parse."""
        self._respond_next(_BAD_PARAMS, times)

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Routes, verifies the signature, rate-limits and pages one request."""
        if request.path != TICKETS_PATH:
            return ApiResponse.of_json(404, {"code": "404", "message": "not found"})
        refusal = self._refusal(request)
        if refusal is not None:
            return ApiResponse.of_json(401, {"code": "401", "message": refusal})
        retry_after = self._admit(self._app_key)
        if retry_after is not None:
            return ApiResponse.of_json(
                429,
                {"code": "429", "message": "too many requests"},
                headers=(("Retry-After", str(retry_after)),),
            )
        try:
            query = _TicketQuery.parse(request.query)
        except _BadParams:
            return _BAD_PARAMS
        if query.end_ms - query.start_ms > MAX_WINDOW_MS:
            return _WINDOW_TOO_WIDE
        return ApiResponse.of_json(
            200, {"code": "0000", "message": "success", "data": self._page(query)}
        )

    def _refusal(self, request: ApiRequest) -> str | None:
        """Says why the request's credentials are refused, or ``None`` if accepted."""
        headers = request.headers
        for name in ("X-App-Key", "X-Timestamp", "X-Sign"):
            if not headers.get(name.lower()):
                return f"missing header {name}"
        app_key, timestamp, sign = headers["x-app-key"], headers["x-timestamp"], headers["x-sign"]
        if not hmac.compare_digest(app_key.encode("utf-8"), self._app_key.encode("utf-8")):
            return "unknown app key"
        if not _DIGITS.fullmatch(timestamp):
            return "invalid timestamp"
        if abs(int(timestamp) - self._now_ms()) > self._max_skew_ms:
            return "timestamp out of range"
        expected = expected_signature(self._app_key, self._app_secret, timestamp, request.target)
        if not hmac.compare_digest(sign.encode("utf-8"), expected.encode("ascii")):
            return "invalid signature"
        return None

    def _page(self, query: _TicketQuery) -> dict[str, Any]:
        """Counts the window's visible tickets and slices one page by offset."""
        now_ms = self._now_ms()
        with self._lock:
            served = [_served(versions, now_ms) for versions in self._versions.values()]
        hits = [
            ticket
            for ticket in served
            if ticket is not None and query.start_ms <= ticket["updateTime"] < query.end_ms
        ]
        hits.sort(key=lambda ticket: (ticket["updateTime"], ticket["ticketNo"]))
        if query.descending:
            hits.reverse()
        offset = (query.page_no - 1) * query.page_size
        return {
            "total": len(hits),
            "pageNo": query.page_no,
            "pageSize": query.page_size,
            "list": hits[offset : offset + query.page_size],
        }

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _served(versions: list[_Version], now_ms: int) -> dict[str, Any] | None:
    """The latest upserted version that has reached the API, if any."""
    for version in reversed(versions):
        if version.visible_at_ms is None or version.visible_at_ms <= now_ms:
            return version.ticket
    return None
