"""The 12345 open API over httpx: signed requests, offset pages, both kinds of errors.

Every request carries ``X-App-Key``, ``X-Timestamp`` (epoch ms, this machine's
clock plus ``clock_offset_seconds``) and ``X-Sign``, the HMAC-SHA256 of app key
+ timestamp + the request target exactly as sent; the query string is built
here, once, and sent as signed. Errors come as HTTP statuses (401, 429 with
``Retry-After``, 5xx, resets, slow answers, 400) and as business codes inside
HTTP 200 (``5001`` busy, ``4002`` window too wide); all become
:class:`~gridhub.errors.SourceUnavailable` with a reason a clerk can act on.
The secret never appears in an error or a log.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from gridhub.connectors.base.http_limits import RequestPacer, retry_after_seconds

from gridhub.errors import SourceUnavailable

SOURCE = "hotline"
TICKETS_PATH = "/open/api/v1/tickets"


def sign(app_key: str, app_secret: str, timestamp_ms: int, target: str) -> str:
    """``X-Sign``: lower-case hex HMAC-SHA256 of ``app_key + timestamp + target``."""
    message = f"{app_key}{timestamp_ms}{target}".encode()
    return hmac.new(app_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


class HotlineClient:
    """Reads pages of tickets in one time window."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        timeout: float,
        max_requests_per_second: float,
        clock_offset_seconds: float = 0.0,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )
        self._app_key = app_key
        self._app_secret = app_secret
        self._offset_ms = int(clock_offset_seconds * 1000)
        self.pacer = RequestPacer(max_requests_per_second)

    def page(self, start_ms: int, end_ms: int, page_no: int, page_size: int) -> dict[str, Any]:
        """``data`` of one page: ``total`` and ``list`` (oldest ``updateTime`` first).

        Raises:
            SourceUnavailable: refused, failed or busy; the caller rewinds and retries.
        """
        query = urlencode(
            {
                "startTime": start_ms,
                "endTime": end_ms,
                "pageNo": page_no,
                "pageSize": page_size,
                "orderBy": "updateTime_asc",
            }
        )
        target = f"{TICKETS_PATH}?{query}"
        self.pacer.wait()
        timestamp = int(time.time() * 1000) + self._offset_ms
        headers = {
            "X-App-Key": self._app_key,
            "X-Timestamp": str(timestamp),
            "X-Sign": sign(self._app_key, self._app_secret, timestamp, target),
        }
        try:
            response = self._http.get(target, headers=headers)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(
                SOURCE, "the API did not answer in time; will retry", kind="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise SourceUnavailable(
                SOURCE, f"connection failed ({type(exc).__name__}); will retry", kind="connection"
            ) from exc
        return _data(response)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def _data(response: httpx.Response) -> dict[str, Any]:
    """The ``data`` of a successful answer; every other answer raises with its reason."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if status == 401:
        hint = (
            "this machine's clock is more than 300 s off the platform's: fix its time "
            "or set sources.hotline.clock_offset_seconds"
            if "timestamp" in message
            else "check sources.hotline.app_key and app_secret"
        )
        raise SourceUnavailable(
            SOURCE, f"the platform refused the request (401 {message}): {hint}", kind="refused"
        )
    if status == 429:
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        raise SourceUnavailable(
            SOURCE,
            f"rate limited (429); retrying in {wait:.0f} s",
            kind="rate_limited",
            retry_after=wait,
        )
    if status != 200:
        raise SourceUnavailable(
            SOURCE, f"the API answered {status} {message}; will retry", kind="server_error"
        )
    if not isinstance(body, dict):
        raise SourceUnavailable(
            SOURCE, "the API answered with broken JSON; will retry", kind="bad_answer"
        )
    code = str(body.get("code", ""))
    if code == "5001":
        raise SourceUnavailable(
            SOURCE, f"the platform is busy (5001 {message}); will retry", kind="server_error"
        )
    if code != "0000":
        raise SourceUnavailable(
            SOURCE, f"the platform answered code {code} ({message})", kind="bad_answer"
        )
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("list"), list):
        raise SourceUnavailable(
            SOURCE, "the answer has no data.list; will retry", kind="bad_answer"
        )
    return data
