"""The public-security database over PyMySQL, with its errors mapped in one place.

The hub's account is read-only and may add nothing to the database, so all
it does is run ``SELECT`` statements; every driver error becomes
:class:`~gridhub.errors.SourceUnavailable` (the database restarts sometimes,
connections drop mid-query) and the poll is retried from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.cursors

from gridhub.errors import ConfigError, SourceUnavailable

SOURCE = "police"


def connect_kwargs(dsn: str) -> dict[str, Any]:
    """PyMySQL connection arguments from ``mysql://user:password@host:port/db``."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise ConfigError("sources.police.dsn must look like mysql://user:password@host:3306/db")
    return {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or "ga_rkxx",
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": 10,
        "read_timeout": 60,
        "cursorclass": pymysql.cursors.DictCursor,
    }


class PoliceClient:
    """Runs queries against the police database, reconnecting after a failure."""

    def __init__(self, dsn: str) -> None:
        self._kwargs = connect_kwargs(dsn)
        self._conn: pymysql.connections.Connection[Any] | None = None

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        try:
            yield
        except pymysql.err.Error as exc:
            self.close()
            code = exc.args[0] if exc.args else "?"
            raise SourceUnavailable(
                SOURCE, f"database error {code} ({type(exc).__name__}); will retry"
            ) from exc
        except OSError as exc:
            self.close()
            raise SourceUnavailable(SOURCE, f"connection failed ({exc.strerror or exc})") from exc

    def query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Rows of one statement (autocommit: each sees the latest committed data)."""
        with self._mapped_errors():
            if self._conn is None:
                self._conn = pymysql.connect(**self._kwargs)
            with self._conn.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())

    def close(self) -> None:
        """Drop the connection; the next query reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()
