"""The party-building REST API over httpx: bearer token, cursor paging, errors mapped.

Every failure the spec lists becomes :class:`~gridhub.errors.SourceUnavailable`
with a reason a clerk can act on, and the pull is retried from the
checkpoint: ``401`` (the token is refused), ``429`` (its ``Retry-After`` is
honoured), ``5xx``, resets and timeouts. Requests are spaced to stay under
``max_requests_per_second`` so that the API's limit is not hit in the first
place. The token never appears in an error or a log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from gridhub.connectors.base.http_limits import RequestPacer, retry_after_seconds

from gridhub.errors import SourceUnavailable

SOURCE = "party"
PATHS = {"members": "/api/v2/members", "activities": "/api/v2/activities"}


class PartyClient:
    """Pages through one feed of the API."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float, max_requests_per_second: float
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )
        self.pacer = RequestPacer(max_requests_per_second)

    def pages(self, entity: str, updated_since: str, limit: int) -> Iterator[list[dict[str, Any]]]:
        """Every page of ``entity`` from ``updated_since`` (inclusive), in API order.

        Raises:
            SourceUnavailable: the API refused or failed; the caller rewinds.
        """
        params: dict[str, Any] = {"updated_since": updated_since, "limit": limit}
        while True:
            body = self._get(PATHS[entity], params)
            items = body.get("items")
            if not isinstance(items, list):
                raise SourceUnavailable(
                    SOURCE, f"{entity}: the answer has no items list", kind="bad_answer"
                )
            yield items
            cursor = body.get("next_cursor")
            if not cursor:
                return
            params = {"updated_since": updated_since, "limit": limit, "cursor": cursor}

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.pacer.wait()
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(
                SOURCE, f"{path} did not answer in time; will retry", kind="timeout"
            ) from exc
        except httpx.TransportError as exc:
            raise SourceUnavailable(
                SOURCE,
                f"{path}: connection failed ({type(exc).__name__}); will retry",
                kind="connection",
            ) from exc
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError as exc:
                raise SourceUnavailable(
                    SOURCE, f"{path} answered with broken JSON", kind="bad_answer"
                ) from exc
            if not isinstance(body, dict):
                raise SourceUnavailable(
                    SOURCE, f"{path} answered with a non-object", kind="bad_answer"
                )
            return body
        if status == 401:
            raise SourceUnavailable(
                SOURCE,
                "the API refused the token (401): check sources.party.token",
                kind="refused",
            )
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise SourceUnavailable(
                SOURCE,
                f"rate limited (429); retrying in {retry_after:.0f} s",
                kind="rate_limited",
                retry_after=retry_after,
            )
        raise SourceUnavailable(
            SOURCE, f"{path} answered {status}; will retry", kind="server_error"
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
