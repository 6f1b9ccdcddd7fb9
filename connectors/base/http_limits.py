"""What every HTTP source needs to stay within an API's rate limit and honour its 429s."""

from __future__ import annotations

import threading
import time


class RequestPacer:
    """Spaces requests at least ``1 / rate`` seconds apart (a per-source rate limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may go."""
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


def retry_after_seconds(header: str | None) -> float:
    """``Retry-After`` in whole seconds (1 when missing or unreadable)."""
    try:
        return max(1.0, float(header or 1))
    except ValueError:
        return 1.0
