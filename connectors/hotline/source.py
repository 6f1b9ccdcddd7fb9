"""Pulls the 12345 tickets by ``updateTime`` in windows of at most 24 h.

Each pull reads from ``low = newest updateTime - lookback`` to now, window by
window. The lookback (default 180 s) covers tickets that reach the API up to
2 minutes after their ``updateTime``; the window's seen-set of
``(ticketNo, updateTime, digest)`` recognises what it serves again. Paging is
by offset and a ticket updated while a window is paged moves out of its
place, so a page can skip one ticket and repeat another: a window counts as
read only when its ``total`` held still from page to page and as many
distinct tickets were read; otherwise it is paged again (a few times at
most; a ticket still missing after that was updated recently, and comes
back through the next pull's lookback).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from gridhub.connectors.base.checkpoint import Checkpoint
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.records import encode_item
from gridhub.connectors.base.source import Source
from gridhub.connectors.base.table_window import TableWindow, row_digest
from gridhub.connectors.hotline.client import HotlineClient

from gridhub.config import HotlineSourceConfig

WINDOW_MS = 24 * 60 * 60 * 1000
CLOCK_MARGIN_MS = 300_000
"""The last window reaches this far past this machine's clock (the skew the platform
itself accepts), so a ticket stamped by a clock running ahead is read at once."""
PASSES = 4
"""How often one window is paged again when pages skipped a moving ticket."""


def at(ms: int) -> datetime:
    """Epoch milliseconds as a UTC time."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def epoch_ms(moment: datetime) -> int:
    """A time as epoch milliseconds."""
    return round(moment.timestamp() * 1000)


class HotlineSource(Source):
    """The 12345 政务服务便民热线 connector."""

    name = "hotline"

    def __init__(
        self,
        config: HotlineSourceConfig,
        publisher: EnvelopePublisher,
        checkpoints: dict[str, Checkpoint],
        *,
        ack_on_publish: bool,
        entities: tuple[str, ...] = ("tickets",),
    ) -> None:
        self.entities = entities
        super().__init__(
            publisher, checkpoints, ack_on_publish=ack_on_publish, poll_seconds=config.poll_seconds
        )
        self.config = config
        self.client = HotlineClient(
            config.base_url,
            config.app_key,
            config.app_secret.get_secret_value(),
            timeout=config.timeout_seconds,
            max_requests_per_second=config.max_requests_per_second,
            clock_offset_seconds=config.clock_offset_seconds,
        )
        self.window: TableWindow
        self.rewind()  # from the committed position

    def rewind(self) -> None:
        """Resume from the committed position."""
        self.window = self.committed_windows(self.config.lookback_seconds, None)["tickets"]

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def poll(self) -> int:
        """Every window from ``low`` to now; a failure part-way rewinds."""
        try:
            return self._pull()
        except Exception:
            self.rewind()
            raise

    def _pull(self) -> int:
        now_ms = int(time.time() * 1000)
        start = (
            epoch_ms(self.window.low)
            if self.window.low
            else now_ms - self.config.backfill_days * WINDOW_MS
        )
        published = 0
        while start <= now_ms:
            # a little past now: the platform's clock may run ahead of this machine's
            end = min(start + WINDOW_MS, now_ms + CLOCK_MARGIN_MS)
            published += self._read_window(start, end)
            start = end
        self.health.positions["tickets"] = {
            "low": self.window.position()["low"],
            "window": len(self.window.seen),
        }
        return published

    def _read_window(self, start: int, end: int) -> int:
        """Page ``[start, end)`` until one pass is clean: the ``total`` the API reports did
        not change from page to page and as many distinct tickets were read.

        A ticket updated during the pass either leaves the window (``total`` drops) or
        moves to its end (read twice, so fewer distinct tickets than ``total``); either
        way the tickets behind it moved up a place and one was skipped.
        """
        published = 0
        for _ in range(PASSES):
            read: set[str] = set()
            totals: set[int] = set()
            page_no = 1
            while True:
                data = self.client.page(start, end, page_no, self.config.page_size)
                total = int(data.get("total") or 0)
                totals.add(total)
                items = data["list"]
                published += self._publish(items)
                read.update(str(item.get("ticketNo")) for item in items)
                if not items or page_no * self.config.page_size >= total:
                    break
                page_no += 1
            if len(totals) == 1 and len(read) >= total:
                break
            self.log.info(
                "tickets moved while paging; reading the window again",
                window_start=at(start).isoformat(),
                read=len(read),
                totals=sorted(totals),
            )
        return published

    def _publish(self, items: list[dict[str, object]]) -> int:
        """The page's new ticket versions as one batch."""
        batch: list[bytes] = []
        newest: datetime | None = None
        for item in items:
            update_time = item.get("updateTime")
            key = str(item.get("ticketNo") or "")
            if isinstance(update_time, int) and key:
                stamp = at(update_time)
                if not self.window.accept(key, stamp, row_digest(dict(item))):
                    continue
                newest = stamp if newest is None or stamp > newest else newest
            batch.append(encode_item("HotlineTicket", dict(item)))
        self.window.advance(newest)
        if batch:
            self.emit("tickets", batch, self.window.position())
        return len(batch)
