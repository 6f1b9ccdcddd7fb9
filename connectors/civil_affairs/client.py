"""The civil-affairs database over psycopg, with its errors mapped in one place.

Read-only, like the police connector: ``SELECT`` only, every driver error
becomes :class:`~gridhub.errors.SourceUnavailable` and the poll is retried
from the checkpoint. The session runs in UTC so that ``updated_at`` comes back
in one offset (the position keeps stamps as text, whose order must be time
order).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from gridhub.errors import ConfigError, SourceUnavailable

SOURCE = "civil"


def check_dsn(dsn: str) -> str:
    """The DSN if it names a PostgreSQL database.

    Raises:
        ConfigError: any other shape.
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigError(
            "sources.civil.dsn must look like postgresql://user:password@host:5432/mz"
        )
    return dsn


class CivilClient:
    """Runs queries against the civil-affairs database, reconnecting after a failure."""

    def __init__(self, dsn: str) -> None:
        self._dsn = check_dsn(dsn)
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            self.close()
            state = getattr(exc, "sqlstate", None) or "?"
            raise SourceUnavailable(
                SOURCE, f"database error {state} ({type(exc).__name__}); will retry"
            ) from exc
        except OSError as exc:
            self.close()
            raise SourceUnavailable(SOURCE, f"connection failed ({exc.strerror or exc})") from exc

    def query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Rows of one statement (autocommit: each sees the latest committed data)."""
        with self._mapped_errors():
            if self._conn is None:
                self._conn = psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    connect_timeout=10,
                    row_factory=dict_row,
                    options="-c TimeZone=UTC -c statement_timeout=60000",
                )
            with self._conn.cursor() as cursor:
                cursor.execute(sql.encode("utf-8"), params)
                return list(cursor.fetchall())

    def close(self) -> None:
        """Drop the connection; the next query reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()
