"""Loopback HTTP plumbing shared by the party-building and 12345 hotline simulators.

Both systems are plain HTTP APIs that misbehave the same way (spec:
``sources/party-building.md`` "Access", ``sources/hotline-12345.md`` "Errors"):
gateways answer 5xx, connections drop mid-body, answers take 30 s and bursts get
``429``. Connectors must be tested against real sockets, so a simulator is a real
``ThreadingHTTPServer`` on ``127.0.0.1`` (an ephemeral port) served from a daemon
thread, with each request handled in its own thread so a slow answer never holds
up another.

Misbehaviour is armed on demand and kept in one first-in-first-out queue: every
GET that arrives, whatever its path, consumes at most one armed fault, in the
order the faults were armed. A fault is consumed before authentication, the way
a gateway in front of the real system fails without looking at credentials.

Subclasses implement :meth:`LoopbackApiServer.handle`, a plain function from
:class:`ApiRequest` to :class:`ApiResponse`; everything about sockets stays here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import struct
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

FaultKind = Literal["respond", "delay", "reset"]


@dataclass(frozen=True)
class ApiRequest:
    """One GET request as an API implementation sees it.

    Attributes:
        target: the request target (path and query) exactly as the client sent it,
            never re-encoded; the hotline signs these very characters.
        path: the path part of ``target``.
        query: percent-decoded query parameters; a repeated name keeps every value.
        headers: request headers keyed by lower-case name.
    """

    target: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]

    @classmethod
    def parse(cls, raw_target: str, headers: Iterable[tuple[str, str]]) -> ApiRequest:
        """Builds a request from what ``http.server`` hands over.

        ``http.server`` decodes the request line as ISO-8859-1; re-encoding it gives
        back the bytes on the wire, read here as UTF-8 (undecodable bytes survive as
        surrogates) so that a target is compared exactly as the client wrote it.

        Args:
            raw_target: ``BaseHTTPRequestHandler.path``.
            headers: the request's header pairs.

        Returns:
            The parsed request.
        """
        target = raw_target.encode("iso-8859-1").decode("utf-8", "surrogateescape")
        parts = urlsplit(target)
        return cls(
            target=target,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in headers},
        )


@dataclass(frozen=True)
class ApiResponse:
    """A complete answer; the plumbing adds ``Content-Length`` itself."""

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_json(
        cls, status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
    ) -> ApiResponse:
        """Serialises ``payload`` as compact UTF-8 JSON, Chinese text unescaped.

        Args:
            status: HTTP status code.
            payload: anything ``json.dumps`` accepts.
            headers: extra response headers.

        Returns:
            The response.
        """
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status=status, body=body, headers=headers)


@dataclass(frozen=True)
class Fault:
    """One armed misbehaviour.

    Attributes:
        kind: ``respond`` answers with ``response`` instead of the API; ``delay``
            waits ``seconds`` and then answers normally; ``reset`` answers normally
            but drops the connection halfway through the body.
        seconds: the wait of a ``delay``.
        response: the canned answer of a ``respond``.
    """

    kind: FaultKind
    seconds: float = 0.0
    response: ApiResponse | None = None


@dataclass
class _Armed:
    fault: Fault
    remaining: int


class _FaultQueue:
    """Thread-safe FIFO of faults, each armed for a number of requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: deque[_Armed] = deque()

    def arm(self, fault: Fault, times: int) -> None:
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._armed.append(_Armed(fault, times))

    def take(self) -> Fault | None:
        with self._lock:
            if not self._armed:
                return None
            head = self._armed[0]
            head.remaining -= 1
            if head.remaining == 0:
                self._armed.popleft()
            return head.fault


class SlidingWindowLimiter:
    """Admits at most ``limit`` requests per key in any window of ``window_s`` seconds.

    Both source systems limit per credential (token, app key) over a sliding
    second. Rejected requests do not count against the window.
    """

    def __init__(
        self, limit: int, *, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Creates an empty limiter.

        Args:
            limit: requests admitted per key and window; at least 1.
            window_s: window length in seconds.
            clock: monotonic seconds; injectable for tests.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> int | None:
        """Records a request for ``key`` if the window has room.

        Args:
            key: the credential the limit applies to.

        Returns:
            ``None`` if admitted, else whole seconds to wait (for ``Retry-After``).
        """
        with self._lock:
            now = self._clock()
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self._window_s:
                hits.popleft()
            if len(hits) >= self._limit:
                return max(1, math.ceil(hits[0] + self._window_s - now))
            hits.append(now)
            return None


class LoopbackApiServer(ABC):
    """A simulated HTTP API on ``127.0.0.1``, with rate limiting and fault injection.

    Use as a context manager (``with Server(...) as server:``) or call
    :meth:`start` and :meth:`stop`. Records live in memory and may be changed
    while the server runs.
    """

    def __init__(self, *, rate_limit_per_s: int) -> None:
        """Prepares a stopped server.

        Args:
            rate_limit_per_s: requests admitted per credential in a sliding second.
        """
        self._limiter = SlidingWindowLimiter(rate_limit_per_s)
        self._faults = _FaultQueue()
        self._stats_lock = threading.Lock()
        self._paths: list[str] = []
        self._stopping = threading.Event()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @abstractmethod
    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answers one request; called from the request's own thread.

        Args:
            request: the parsed request.

        Returns:
            The response to send.
        """

    def start(self) -> Self:
        """Binds an ephemeral loopback port (the same one again after :meth:`stop`, as a
        system that comes back keeps its address) and serves from a daemon thread.

        Returns:
            The server itself, now running.

        Raises:
            RuntimeError: if it is already running.
        """
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._stopping.clear()
        httpd = _HttpServer(self, self._port)
        self._port = httpd.server_address[1]
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{httpd.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread
        return self

    def stop(self) -> None:
        """Stops serving, wakes delayed requests and closes open connections."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def requests_served(self) -> int:
        """GET requests received so far, faulted ones included."""
        with self._stats_lock:
            return len(self._paths)

    @property
    def request_paths(self) -> list[str]:
        """Targets (path and query, as sent) of every GET received, in arrival order."""
        with self._stats_lock:
            return list(self._paths)

    def fail_next(self, status: int, times: int = 1) -> None:
        """Makes the next ``times`` requests get a gateway error with a short HTML body.

        Args:
            status: a 5xx status such as 502, 503 or 504.
            times: how many requests to fail.
        """
        if not 500 <= status <= 599:
            raise ValueError(f"status must be 5xx, got {status}")
        phrase = f"{status} {HTTPStatus(status).phrase}"
        body = f"<html><body><h1>{phrase}</h1></body></html>".encode()
        response = ApiResponse(status=status, body=body, content_type="text/html")
        self._faults.arm(Fault("respond", response=response), times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Makes the next ``times`` requests wait ``seconds`` before being answered.

        Only the delayed request's thread waits; other requests are served.

        Args:
            seconds: how long to hold each answer.
            times: how many requests to delay.
        """
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        self._faults.arm(Fault("delay", seconds=seconds), times)

    def reset_next(self, times: int = 1) -> None:
        """Makes the next ``times`` answers stop halfway through the body with a reset.

        Args:
            times: how many answers to cut.
        """
        self._faults.arm(Fault("reset"), times)

    def _respond_next(self, response: ApiResponse, times: int) -> None:
        """Arms a canned answer; subclasses build their own kinds on it."""
        self._faults.arm(Fault("respond", response=response), times)

    def _admit(self, key: str) -> int | None:
        """Applies the rate limit; ``None`` if admitted, else ``Retry-After`` seconds."""
        return self._limiter.acquire(key)

    def answer(
        self, raw_target: str, headers: Iterable[tuple[str, str]]
    ) -> tuple[ApiResponse | None, bool]:
        """Decides the fate of one request; called by the request handler.

        Args:
            raw_target: the request target from the request line.
            headers: the request's header pairs.

        Returns:
            The response, or ``None`` to drop the connection unanswered (the server
            stopped during a delay), and whether to cut the body halfway.
        """
        with self._stats_lock:
            self._paths.append(raw_target)
        fault = self._faults.take()
        if fault is not None and fault.kind == "delay" and self._stopping.wait(fault.seconds):
            return None, False
        if fault is not None and fault.response is not None:
            return fault.response, False
        try:
            response = self.handle(ApiRequest.parse(raw_target, headers))
        except Exception:
            logger.exception("simulator failed on %s", raw_target)
            response = ApiResponse.of_json(500, {"error": "internal server error"})
        return response, fault is not None and fault.kind == "reset"


class _HttpServer(ThreadingHTTPServer):
    """Threading server bound to loopback that knows its API and open connections."""

    daemon_threads = True

    def __init__(self, api: LoopbackApiServer, port: int = 0) -> None:
        self.api = api
        self._connections_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", port), _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shuts down kept-alive connections so their handler threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stays quiet when a client went away (a timed-out client, a reset)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with keep-alive and hands each GET to the API."""

    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps test output clean; the API records what it served instead."""

    def do_GET(self) -> None:
        response, cut = self.server.api.answer(self.path, self.headers.items())
        if response is None:
            self._abort()
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if cut:
            self.wfile.write(response.body[: len(response.body) // 2])
            self._abort()
        else:
            self.wfile.write(response.body)

    def _abort(self) -> None:
        """Closes the connection with a TCP reset instead of an orderly close."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
