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
may change, data may not. Only a client that logs in as ``gridhub`` with the
server's writer key (``X-ClickHouse-User``/``-Key``, basic auth, or ``user``
and ``password`` parameters) may write, and only when the server was given one:
the hub's own sink, when it reaches a store over HTTP as it reaches a
ClickHouse server in production. Its ``INSERT … FORMAT X`` takes the data in the
body, chunked and compressed or not (Native and RowBinary from clickhouse-connect).
Everyone else's INSERT is refused unread. The embedded store enforces no roles,
so it is served to the local operator only; the hub says so at start.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hmac
import ipaddress
import json
import os
import re
import socket
import sys
import tempfile
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
WRITER_USER = "gridhub"
"""The one user that may write, with the server's writer key as its password."""
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


_DATA_AFTER = re.compile(rb"\sFORMAT\s+[A-Za-z0-9_]+[ \t]*\r?\n", re.IGNORECASE)


def insert_with_data(body: bytes) -> tuple[str, bytes] | None:
    """An ``INSERT … FORMAT X`` statement and the data after it, when a body holds both
    (clickhouse-connect sends its inserts so); None for any other body."""
    head = body[:65536]
    if not _INSERT.match(head.decode("utf-8", errors="replace")):
        return None
    match = _DATA_AFTER.search(head)
    if match is None:
        return None
    return body[: match.end()].decode("utf-8").strip(), body[match.end() :]


class HttpError(Exception):
    """An answer other than 200, with ClickHouse's error text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class StoreServer:
    """Serves SQL over the ClickHouse HTTP interface from the store at ``path``: read-only,
    except for a client holding ``writer_key``."""

    def __init__(self, listen: str, path: str, *, writer_key: str | None = None) -> None:
        host, port = loopback_only(listen)
        self.path = path
        self.writer_key = writer_key
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect expects

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                super().finish()

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
                writer = server.is_writer(params, self.headers)
                try:
                    url_sql = params.get("query", "")
                    body = server.decompress(body, self.headers)
                    if writer and body and _INSERT.match(url_sql):  # the body is the data
                        fmt, data, summary = server.run(url_sql.strip(), params, body, writer)
                    elif writer and (split := insert_with_data(body)):
                        sql, rows = split  # the statement, then its data, in the body
                        fmt, data, summary = server.run(sql, params, rows, writer)
                    else:
                        text = body.decode("utf-8", errors="replace")
                        sql = (url_sql + "\n" + text).strip()
                        fmt, data, summary = server.run(sql, params, None, writer)
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

    def is_writer(self, params: dict[str, str], headers: Any) -> bool:
        """Whether the request logs in as :data:`WRITER_USER` with the writer key."""
        if self.writer_key is None:
            return False
        user = headers.get("X-ClickHouse-User") or params.get("user")
        key = headers.get("X-ClickHouse-Key") or params.get("password")
        basic = headers.get("Authorization") or ""
        if basic.lower().startswith("basic "):
            try:
                user, _, key = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return False
        return user == WRITER_USER and hmac.compare_digest(
            (key or "").encode(), self.writer_key.encode()
        )

    @staticmethod
    def decompress(body: bytes, headers: Any) -> bytes:
        """The request body decompressed by its ``Content-Encoding``."""
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
        return body

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

    def run(
        self, sql: str, params: dict[str, str], data: bytes | None = None, writer: bool = False
    ) -> tuple[str, bytes, dict[str, str]]:
        """Format, bytes and summary of one query: read-only, unless ``writer``; ``data`` is
        the body of the writer's ``INSERT … FORMAT X``.

        Raises:
            HttpError: an empty query, or ClickHouse's error (anyone else's write among them).
        """
        if not sql:
            raise HttpError(400, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        if _INSERT.match(sql) and not writer:
            raise HttpError(500, READONLY)
        sql, own_format = split_format(sql)
        fmt = own_format or params.get("default_format") or DEFAULT_FORMAT
        infile: str | None = None
        if data is not None:
            with tempfile.NamedTemporaryFile(suffix=".insert", delete=False) as file:
                file.write(data)
                infile = file.name
            sql = f"{sql} FROM INFILE {_literal(infile)} FORMAT {fmt}"
            fmt = DEFAULT_FORMAT
        bound = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in params.items() if k not in NOT_SETTINGS and not k.startswith("param_")
        }
        if not writer:
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
            answer = bytes(result.bytes())
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
            if infile is not None:
                os.unlink(infile)
        return fmt, answer, summary

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()
        log.warning(
            "embedded store served read-only to this machine only; it enforces no roles",
            address=self.address,
        )

    def stop(self) -> None:
        """Stop serving, drop the open connections (as a server that stops does; a client
        keeping its connection alive would otherwise go on being answered) and free the
        port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _exception_text(exc: Exception) -> str:
    """ClickHouse's own message (``Code: N. DB::Exception: ...``) from chdb's error."""
    text = str(exc).strip() or type(exc).__name__
    start = text.find("Code: ")
    return text[start:] if start >= 0 else text
