"""Read-only queries against the embedded store while the hub holds it.

chdb lives inside the hub's process, and no other process can open the store
while the hub runs. So the hub answers queries over HTTP on
``[clickhouse] serve`` (loopback only) in the ClickHouse HTTP interface's
simplest form: the query in the ``query`` parameter or the body, the output
format in ``default_format``, the answer in that format, errors as ClickHouse
prints them. Every query runs with ``readonly = 1``: nobody but the hub
writes. The embedded store enforces no roles, so it is served to the local
operator only; the hub says so at start.
"""

from __future__ import annotations

import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from clickhouse_connect.driver.client import Client

from gridhub.errors import ConfigError
from gridhub.logs import get_logger

log = get_logger("store.serve")

DEFAULT_FORMAT = "TabSeparated"


def loopback_only(
    listen: str, *, key: str = "clickhouse.serve", why: str = "the embedded store enforces no roles"
) -> tuple[str, int]:
    """Host and port of ``listen``, refusing anything but a loopback address.

    ``key`` and ``why`` name the setting and the reason in the refusal.
    """
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"{key} = {listen!r}: {why}, so it is served on a loopback address only "
            "(127.0.0.1:PORT)"
        )
    return host, int(port)


class StoreServer:
    """Serves read-only SQL over HTTP from a reader session of the hub's store."""

    def __init__(self, listen: str, client: Client) -> None:
        host, port = loopback_only(listen)
        self.client = client  # a session of its own: ``readonly`` sticks to it
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: str) -> None:
                params = parse_qs(urlsplit(self.path).query)
                if urlsplit(self.path).path == "/ping":
                    self._send(200, b"Ok.\n", "text/plain")
                    return
                sql = (params.get("query", [""])[0] + "\n" + body).strip()
                fmt = params.get("default_format", [DEFAULT_FORMAT])[0]
                if not sql:
                    self._send(400, b"Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)\n")
                    return
                status, data = server.run(sql, fmt)
                self._send(status, data, headers={"X-ClickHouse-Format": fmt})

            def _send(
                self,
                status: int,
                data: bytes,
                content_type: str = "text/plain; charset=UTF-8",
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length).decode("utf-8"))

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.address = "{}:{}".format(*self._httpd.server_address[:2])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def run(self, sql: str, fmt: str) -> tuple[int, bytes]:
        """Status and body of one read-only query."""
        try:
            with self.lock:
                data = self.client.raw_query(sql, fmt=fmt, settings={"readonly": 1})
        except Exception as exc:
            text = str(exc).strip() or type(exc).__name__
            return 500, (text + "\n").encode("utf-8")
        return 200, bytes(data)

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()
        log.warning(
            "embedded store served read-only to this machine only; it enforces no roles",
            address=self.address,
        )

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
