"""Simulator of the party-building system's REST API (党建信息系统).

Follows ``spec/sources/party-building.md``: ``GET /api/v2/members`` and
``GET /api/v2/activities`` behind ``Authorization: Bearer <token>``, at most
``rate_limit_per_s`` requests per token in a sliding second, and keyset paging by
``(updatedAt, id)`` with an inclusive ``updated_since``.

Paging is a real keyset cursor over live data, never a snapshot: the cursor
names the last ``(updatedAt, id)`` served, and each page starts after it in the
order of the moment. A record updated while a client pages therefore moves past
the cursor and shows up on a later page or the next pull, exactly as the spec
warns. The cursor also carries the ``updated_since`` and the feed it belongs to,
so a client that changes either gets ``400``.

Error bodies follow the one shape the spec shows: ``{"error": "..."}``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import re
import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from gridhub.simulators.http_base import ApiRequest, ApiResponse, LoopbackApiServer

MEMBERS_PATH = "/api/v2/members"
ACTIVITIES_PATH = "/api/v2/activities"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))

_DIGITS = re.compile(r"[0-9]+")
_Key = tuple[datetime, str]


class _BadRequest(ValueError):
    """A query parameter the API refuses; the message goes into the 400 body."""


def parse_instant(text: object) -> datetime:
    """Parses an ISO-8601 timestamp that must carry a UTC offset.

    Args:
        text: the timestamp, e.g. ``"2026-10-22T09:30:00+08:00"``.

    Returns:
        An aware datetime.

    Raises:
        ValueError: if ``text`` is not such a timestamp.
    """
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be a string, got {type(text).__name__}")
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return instant


@dataclass(frozen=True)
class _Cursor:
    """Where a page ended, and which query it belongs to."""

    feed: str
    since: str | None
    updated_at: str
    record_id: str

    def encode(self) -> str:
        payload = {
            "feed": self.feed,
            "since": self.since,
            "after": [self.updated_at, self.record_id],
        }
        return base64.urlsafe_b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> _Cursor:
        try:
            payload = json.loads(base64.b64decode(text, altchars=b"-_", validate=True))
            feed, since = payload["feed"], payload["since"]
            updated_at, record_id = payload["after"]
        except (binascii.Error, ValueError, TypeError, KeyError) as exc:
            raise _BadRequest("invalid cursor") from exc
        fields = (feed, updated_at, record_id)
        if not all(isinstance(value, str) for value in fields) or not (
            since is None or isinstance(since, str)
        ):
            raise _BadRequest("invalid cursor")
        return cls(feed=feed, since=since, updated_at=updated_at, record_id=record_id)


@dataclass(frozen=True)
class _PageQuery:
    """A validated page request: start bounds and size."""

    since_text: str | None
    since: datetime | None
    after: _Key | None
    limit: int

    @classmethod
    def parse(cls, query: Mapping[str, list[str]], feed: str) -> _PageQuery:
        since_text = _single(query, "updated_since")
        since = None
        if since_text is not None:
            try:
                since = parse_instant(since_text)
            except ValueError as exc:
                raise _BadRequest("updated_since must be ISO-8601 with a UTC offset") from exc
        limit_text = _single(query, "limit")
        limit = DEFAULT_LIMIT
        if limit_text is not None:
            if not _DIGITS.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
                raise _BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
            limit = int(limit_text)
        cursor_text = _single(query, "cursor")
        after = None
        if cursor_text is not None:
            cursor = _Cursor.decode(cursor_text)
            if cursor.feed != feed:
                raise _BadRequest(f"cursor does not belong to {feed}")
            if cursor.since != since_text:
                raise _BadRequest("cursor requires the same updated_since as its first page")
            try:
                after = (parse_instant(cursor.updated_at), cursor.record_id)
            except ValueError as exc:
                raise _BadRequest("invalid cursor") from exc
        return cls(since_text=since_text, since=since, after=after, limit=limit)


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name, [])
    if len(values) > 1:
        raise _BadRequest(f"{name} given more than once")
    return values[0] if values else None


class _Feed:
    """Records of one endpoint, kept sorted by ``(updatedAt, id)`` for keyset paging.

    Stored dicts are never mutated (an upsert replaces the dict), so a page can be
    serialised after the lock is released.
    """

    def __init__(self, name: str, id_field: str) -> None:
        self.name = name
        self.id_field = id_field
        self._lock = threading.Lock()
        self._keys: list[_Key] = []
        self._records: dict[str, tuple[_Key, dict[str, Any]]] = {}

    def upsert(self, record: Mapping[str, Any]) -> dict[str, Any]:
        record_id = record.get(self.id_field)
        if not isinstance(record_id, str) or not record_id:
            raise ValueError(f"{self.name} record needs a non-empty string {self.id_field}")
        key = (parse_instant(record.get("updatedAt")), record_id)
        stored = copy.deepcopy(dict(record))
        with self._lock:
            previous = self._records.get(record_id)
            if previous is not None:
                del self._keys[bisect_left(self._keys, previous[0])]
            insort(self._keys, key)
            self._records[record_id] = (key, stored)
        return copy.deepcopy(stored)

    def page(self, query: _PageQuery) -> tuple[list[dict[str, Any]], str | None]:
        with self._lock:
            start = 0 if query.since is None else bisect_left(self._keys, (query.since, ""))
            if query.after is not None:
                start = max(start, bisect_right(self._keys, query.after))
            window = self._keys[start : start + query.limit + 1]
            items = [self._records[record_id][1] for _, record_id in window[: query.limit]]
        if len(window) <= query.limit:
            return items, None
        last = items[-1]
        cursor = _Cursor(self.name, query.since_text, last["updatedAt"], last[self.id_field])
        return items, cursor.encode()


class PartyApiServer(LoopbackApiServer):
    """The party-building API on loopback, over members and activities held in memory."""

    def __init__(
        self,
        members: list[dict[str, Any]],
        activities: list[dict[str, Any]],
        token: str,
        rate_limit_per_s: int = 20,
    ) -> None:
        """Loads the records; call :meth:`start` (or use ``with``) to serve them.

        Args:
            members: member dicts shaped as the API serves them; ``memberId`` and an
                ``updatedAt`` with offset are required, every other field is served
                untouched (dirty values included).
            activities: activity dicts, keyed by ``activityId``.
            token: the one bearer token the API accepts.
            rate_limit_per_s: requests admitted per token in a sliding second.
        """
        super().__init__(rate_limit_per_s=rate_limit_per_s)
        if not token:
            raise ValueError("token must not be empty")
        self._token = token.encode("utf-8")
        self._members = _Feed("members", "memberId")
        self._activities = _Feed("activities", "activityId")
        self._feeds = {MEMBERS_PATH: self._members, ACTIVITIES_PATH: self._activities}
        for member in members:
            self._members.upsert(member)
        for activity in activities:
            self._activities.upsert(activity)

    def upsert_member(self, member: Mapping[str, Any], *, touch: bool = False) -> dict[str, Any]:
        """Adds or replaces a member while the server runs.

        Args:
            member: the member, keyed by ``memberId``.
            touch: set ``updatedAt`` to now (+08:00, millisecond precision) instead
                of taking the caller's.

        Returns:
            The member as now stored.
        """
        return self._members.upsert(_touched(member) if touch else member)

    def upsert_activity(
        self, activity: Mapping[str, Any], *, touch: bool = False
    ) -> dict[str, Any]:
        """Adds, corrects or voids an activity while the server runs.

        Args:
            activity: the activity, keyed by ``activityId``.
            touch: set ``updatedAt`` to now (+08:00, millisecond precision).

        Returns:
            The activity as now stored.
        """
        return self._activities.upsert(_touched(activity) if touch else activity)

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Routes, authenticates, rate-limits and pages one request."""
        feed = self._feeds.get(request.path)
        if feed is None:
            return ApiResponse.of_json(404, {"error": "not found"})
        token = self._bearer_token(request)
        if token is None:
            return ApiResponse.of_json(401, {"error": "unauthorized"})
        retry_after = self._admit(token)
        if retry_after is not None:
            return ApiResponse.of_json(
                429, {"error": "too many requests"}, headers=(("Retry-After", str(retry_after)),)
            )
        try:
            query = _PageQuery.parse(request.query, feed.name)
        except _BadRequest as exc:
            return ApiResponse.of_json(400, {"error": str(exc)})
        items, next_cursor = feed.page(query)
        return ApiResponse.of_json(200, {"items": items, "next_cursor": next_cursor})

    def _bearer_token(self, request: ApiRequest) -> str | None:
        """Returns the presented token if it is the right one, else ``None``."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.encode("utf-8"), self._token
        ):
            return None
        return token


def _touched(record: Mapping[str, Any]) -> dict[str, Any]:
    now = datetime.now(CHINA_STANDARD_TIME).isoformat(timespec="milliseconds")
    return {**record, "updatedAt": now}
