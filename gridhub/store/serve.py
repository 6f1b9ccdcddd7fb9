"""The embedded store over the ClickHouse HTTP interface, read-only, while the hub holds it.

chdb lives inside the hub's process, and no other process can open the store
while the hub runs. So the hub answers on ``[clickhouse] serve`` (loopback
only) as a ClickHouse server's HTTP interface would, far enough for
clickhouse-connect over HTTP (queries, parameters, settings, DataFrames),
``curl`` and ``gridhub query``:

- the query in the ``query`` parameter and/or the body (``GET`` or ``POST``),
  a body compressed with ``Content-Encoding`` gzip, deflate, lz4 or zstd;
- its own ``FORMAT`` clause, else ``default_format`` (TabSeparated);
- ``database``; ``param_<name>`` for ``{name:Type}`` placeholders; any other
  parameter is a setting of that query (an unknown one is ClickHouse's error);
- the answer compressed when ``enable_http_compression=1`` and the client
  accepts gzip, deflate, lz4 or zstd;
- ``X-ClickHouse-Format``, ``-Timezone``, ``-Query-Id``, ``-Server-Display-Name``
  and ``-Summary`` headers; errors as ClickHouse prints them, with
  ``X-ClickHouse-Exception-Code``.

Every query runs in a chdb connection of its own with ``readonly = 2``: settings
may change, data may not (nobody but the hub writes). The embedded store
enforces no roles, so it is served to the local operator only; the hub says so
at start.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import sys
import threading
import uuid
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame

from gridhub.errors import ConfigError
from gridhub.logs import get_logger

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # clickhouse-connect brings the backport
    from backports import zstd

log = get_logger("store.serve")

_connect = cast(Callable[[str], Any], chdb.connect)
"""A chdb connection to the store (any number may be open in the hub's process)."""

DEFAULT_FORMAT = "TabSeparated"
NOT_SETTINGS = frozenset(
    {
        "query",
        "default_format",
        "database",
        "user",
        "password",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "enable_http_compression",
        "quota_key",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
    }
)
"""URL parameters of the HTTP interface that are not query settings."""
CODECS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
    "gzip": (gzip.compress, gzip.decompress),
    "deflate": (zlib.compress, zlib.decompress),
    "lz4": (lz4.frame.compress, lz4.frame.decompress),
    "zstd": (zstd.compress, zstd.decompress),
}
"""Content encodings understood in a body and offered for an answer: (compress, decompress)."""
_FORMAT_CLAUSE = re.compile(r"\s+FORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_INSERT = re.compile(r"\s*(?:--[^\n]*\n\s*)*INSERT\b", re.IGNORECASE)
READONLY = (
    "Code: 164. DB::Exception: the embedded store takes writes from the hub only: "
    "Cannot execute query in readonly mode. (READONLY)"
)


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


def split_format(sql: str) -> tuple[str, str | None]:
    """The query without a closing ``FORMAT name`` clause, and that name: as on a
    ClickHouse server, a query's own format wins over ``default_format``."""
    match = _FORMAT_CLAUSE.search(sql)
    if match is None:
        return sql, None
    return sql[: match.start()], match.group(1)


class HttpError(Exception):
    """An answer other than 200, with ClickHouse's error text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class StoreServer:
    """Serves read-only SQL over the ClickHouse HTTP interface from the store at ``path``."""

    def __init__(self, listen: str, path: str) -> None:
        host, port = loopback_only(listen)
        self.path = path
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect expects

            def do_GET(self) -> None:
                self._answer(b"", get=True)

            def do_POST(self) -> None:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    self._answer(self._chunks(), get=False)
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    self._answer(self.rfile.read(length), get=False)

            def _chunks(self) -> bytes:
                parts: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()

            def _answer(self, body: bytes, *, get: bool) -> None:
                url = urlsplit(self.path)
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                if url.path == "/ping" or (get and url.path == "/" and "query" not in params):
                    self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                    return
                query_id = params.get("query_id") or str(uuid.uuid4())
                try:
                    sql = params.get("query", "") + "\n" + server.decode(body, self.headers)
                    fmt, data, summary = server.run(sql.strip(), params)
                except HttpError as exc:
                    code = _ERROR_CODE.search(exc.text)
                    headers = {"X-ClickHouse-Exception-Code": code.group(1) if code else "0"}
                    self._send(exc.status, (exc.text + "\n").encode(), headers)
                    return
                headers = {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Format": fmt,
                    "X-ClickHouse-Query-Id": query_id,
                    "X-ClickHouse-Timezone": server.timezone,
                    "X-ClickHouse-Server-Display-Name": "gridhub-embedded",
                    "X-ClickHouse-Summary": json.dumps(summary),
                }
                encoding = server.answer_encoding(params, self.headers.get("Accept-Encoding"))
                if encoding is not None:
                    data = CODECS[encoding][0](data)
                    headers["Content-Encoding"] = encoding
                self._send(200, data, headers)

            def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                headers.setdefault("Content-Type", "text/plain; charset=UTF-8")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.timezone = self._one("SELECT timezone()")
        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.address = "{}:{}".format(*self._httpd.server_address[:2])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _one(self, sql: str) -> str:
        connection = _connect(self.path)
        try:
            return str(connection.query(sql, "TabSeparated").bytes().decode().strip())
        finally:
            connection.close()

    @staticmethod
    def decode(body: bytes, headers: Any) -> str:
        """The request body as text, decompressed by its ``Content-Encoding``."""
        encoding = (headers.get("Content-Encoding") or "").strip().lower()
        if encoding and encoding != "identity":
            codec = CODECS.get(encoding)
            if codec is None:
                raise HttpError(
                    400,
                    f"Code: 36. DB::Exception: Unknown Content-Encoding {encoding!r}. "
                    "(BAD_ARGUMENTS)",
                )
            try:
                body = codec[1](body)
            except Exception as exc:
                raise HttpError(
                    400,
                    f"Code: 271. DB::Exception: Cannot decompress the body as {encoding}: "
                    f"{exc}. (CANNOT_DECOMPRESS)",
                ) from exc
        return body.decode("utf-8", errors="replace")  # an INSERT's data is refused unread

    @staticmethod
    def answer_encoding(params: dict[str, str], accept: str | None) -> str | None:
        """The encoding of the answer: only when the client asked for compression and
        accepts one we have (in its order of preference)."""
        if params.get("enable_http_compression") not in ("1", "true") or not accept:
            return None
        for offered in accept.split(","):
            name = offered.split(";")[0].strip().lower()
            if name in CODECS:
                return name
        return None

    def run(self, sql: str, params: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
        """Format, bytes and summary of one read-only query.

        Raises:
            HttpError: an empty query, or ClickHouse's error (a write among them).
        """
        if not sql:
            raise HttpError(400, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        if _INSERT.match(sql):
            raise HttpError(500, READONLY)
        sql, own_format = split_format(sql)
        fmt = own_format or params.get("default_format") or DEFAULT_FORMAT
        bound = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in params.items() if k not in NOT_SETTINGS and not k.startswith("param_")
        }
        settings["readonly"] = "2"  # after the client's: nobody but the hub writes
        connection = _connect(self.path)
        try:
            for name, value in settings.items():
                try:
                    connection.query(f"SET {_identifier(name)} = {_literal(value)}")
                except Exception as exc:  # an unknown setting, or a value it does not take
                    raise HttpError(400, _exception_text(exc)) from exc
            if params.get("database"):
                connection.query(f"USE {_identifier(params['database'])}")
            result = connection.query(sql, fmt, params=bound)
            data = bytes(result.bytes())
            summary = {
                "read_rows": str(result.rows_read()),
                "read_bytes": str(result.bytes_read()),
                "elapsed_ns": str(int(result.elapsed() * 1e9)),
            }
        except HttpError:
            raise
        except Exception as exc:
            raise HttpError(500, _exception_text(exc)) from exc
        finally:
            connection.close()
        return fmt, data, summary

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


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _exception_text(exc: Exception) -> str:
    """ClickHouse's own message (``Code: N. DB::Exception: ...``) from chdb's error."""
    text = str(exc).strip() or type(exc).__name__
    start = text.find("Code: ")
    return text[start:] if start >= 0 else text
