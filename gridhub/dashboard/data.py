"""What the dashboard shows: the hub's status now, its last hour, dead letters with a
masked sample, and what waits per community (``/metrics`` takes its dead-letter counts
from here too).

The last hour is sampled from the status the hub writes every second (every
``[hub] dashboard_sample_seconds``), so the charts cost the hot path nothing.
Store queries are cached for a few seconds; while ClickHouse is away the
dashboard keeps what it last read and says so through the status.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from gridhub.logs import get_logger, mask_id
from gridhub.schemas import SchemaError, decode

log = get_logger("dashboard")

HOUR = 3600.0
QUERY_EVERY_S = 5.0
_ID = re.compile(r"(?<![0-9])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")
_SECRET = re.compile(
    r"(\"?(?:token|secret|app_secret|appSecret|password|passwd|key)\"?\s*[:=]\s*)"
    r"(\"[^\"]*\"|[^\s,}&]+)",
    re.IGNORECASE,
)


def mask_sample(raw: bytes, limit: int = 400) -> str:
    """A dead letter's raw bytes as text an operator may see: a record in the wire
    format as its fields, ID numbers as first 6 + last 4, values of secret-looking keys
    hidden, control bytes dropped, cut short."""
    text = raw.decode("utf-8", errors="replace")
    if raw[:1] == b"\x00":
        try:
            _, record = decode(raw)
            text = json.dumps(record, ensure_ascii=False, default=str)
        except SchemaError:
            pass  # shown as the bytes came
    text = "".join(ch if ch.isprintable() else "·" for ch in text)
    text = _SECRET.sub(lambda m: m.group(1) + '"***"', text)
    text = _ID.sub(lambda m: mask_id(m.group(1)), text)
    return text if len(text) <= limit else text[:limit] + "…"


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Overview:
    """The dashboard's data, kept by the hub's process."""

    def __init__(
        self,
        status: Callable[[], dict[str, Any] | None],
        reader: Callable[[], Client],
        database: str,
        sample_seconds: float = 10.0,
    ) -> None:
        self.status = status
        self.reader = reader
        self.database = database
        self.sample_seconds = sample_seconds
        self.history: deque[dict[str, Any]] = deque(maxlen=int(HOUR / sample_seconds) + 1)
        self._fresh: deque[tuple[float, float]] = deque(maxlen=200_000)
        self._last_sample = 0.0
        self._lock = threading.Lock()
        self._stored: tuple[float, dict[str, Any]] | None = None

    def stored_freshness(self, seconds: list[float]) -> None:
        """Freshness of records just stored (called by the sink's flush)."""
        now = time.time()
        with self._lock:
            self._fresh.extend((now, s) for s in seconds)

    def sample(self, status: dict[str, Any]) -> None:
        """Add a point to the last hour when one is due (called on every status write)."""
        now = time.time()
        if now - self._last_sample < self.sample_seconds:
            return
        since, self._last_sample = self._last_sample, now
        with self._lock:
            recent = [s for t, s in self._fresh if t > since]
        stages = status.get("stages", {})
        self.history.append(
            {
                "t": round(now, 3),
                "pulled": {n: s.get("records", 0) for n, s in status.get("sources", {}).items()},
                "routed": stages.get("routed", 0),
                "merged": stages.get("merged", 0),
                "stored": stages.get("sunk_rows", 0),
                "dead_letters": stages.get("dead_letters", 0),
                "lag": _lag_total(status),
                "fresh_p50": quantile(recent, 0.5),
                "fresh_p99": quantile(recent, 0.99),
            }
        )

    def answer(self) -> dict[str, Any]:
        """``GET /api/overview``."""
        status = self.status() or {}
        return {
            "generated_at": datetime.now(UTC).isoformat(),
            "status": {
                "written_at": status.get("written_at"),
                "caught_up": status.get("caught_up", False),
                "store_error": status.get("store_error", ""),
                "sources": {
                    name: {
                        key: source.get(key)
                        for key in ("healthy", "reason", "records", "errors", "last_success")
                    }
                    for name, source in status.get("sources", {}).items()
                },
                "stages": status.get("stages", {}),
                "tables": status.get("tables", {}),
                "lag": _lag_total(status),
                "lag_by_topic": {
                    topic: sum(parts.values())
                    for topic, parts in status.get("lag", {}).items()
                    if not topic.endswith("__leader")
                },
            },
            "history": list(self.history),
            **self._from_store(),
        }

    def dead_letter_counts(self) -> list[tuple[str, str, str, int]]:
        """(source, entity, reason, count) of the stored dead letters, for ``/metrics``."""
        return [
            (d["source"], d["entity"], d["reason"], d["count"])
            for d in self._from_store()["dead_letters"]
        ]

    def _from_store(self) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._stored
        if cached is not None and now - cached[0] < QUERY_EVERY_S:
            return cached[1]
        db = self.database
        try:
            client = self.reader()
            letters = client.query(
                "SELECT source, entity, reason_kind, count(), hex(any(raw)) FROM ("
                "SELECT source, entity, raw, "
                "trim(splitByRegexp('[:：(（;；]', reason)[1]) AS reason_kind "
                f"FROM {db}.dead_letters FINAL) GROUP BY source, entity, reason_kind "
                "ORDER BY count() DESC LIMIT 50"
            ).result_rows
            waiting = client.query(
                "SELECT community, sum(unplaced), sum(unlinked) FROM ("
                "SELECT ifNull(community_code, '') AS community, "
                "countIf(placement = 'unplaced') AS unplaced, toUInt64(0) AS unlinked "
                f"FROM {db}.resident FINAL GROUP BY community "
                "UNION ALL SELECT ifNull(community_code, '') AS community, toUInt64(0), count() "
                f"FROM {db}.unlinked FINAL GROUP BY community"
                ") GROUP BY community HAVING sum(unplaced) + sum(unlinked) > 0 "
                "ORDER BY community"
            ).result_rows
        except Exception as exc:  # ClickHouse away: keep what was read last
            log.warning("dashboard data not read", reason=str(exc)[:300])
            return cached[1] if cached is not None else {"dead_letters": [], "communities": []}
        stored = {
            "dead_letters": [
                {
                    "source": source,
                    "entity": entity,
                    "reason": reason,
                    "count": int(count),
                    "sample": mask_sample(bytes.fromhex(raw)),
                }
                for source, entity, reason, count, raw in letters
            ],
            "communities": [
                {"community_code": code, "unplaced": int(unplaced), "unlinked": int(unlinked)}
                for code, unplaced, unlinked in waiting
            ],
        }
        self._stored = (now, stored)
        return stored


def _lag_total(status: dict[str, Any]) -> int:
    return sum(
        sum(parts.values())
        for topic, parts in status.get("lag", {}).items()
        if not topic.endswith("__leader")
    )
