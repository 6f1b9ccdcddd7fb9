"""The civil-affairs database over psycopg (see ``base/db_client.py`` for errors).

The session runs in UTC so that ``updated_at`` comes back in one offset (the
position keeps stamps as text, whose order must be time order).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg
from gridhub.connectors.base.db_client import ReadOnlyDatabase
from psycopg.rows import dict_row

from gridhub.errors import ConfigError

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


class CivilClient(ReadOnlyDatabase):
    """The civil-affairs database over psycopg (dict rows, UTC session)."""

    source = SOURCE
    driver_error = psycopg.Error

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = check_dsn(dsn)

    def _connect(self) -> Any:
        return psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=10,
            row_factory=dict_row,
            options="-c TimeZone=UTC -c statement_timeout=60000",
        )

    def _error_code(self, exc: Exception) -> str:
        return getattr(exc, "sqlstate", None) or "?"

    def _execute(self, conn: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with conn.cursor() as cursor:
            cursor.execute(sql.encode("utf-8"), params)
            return list(cursor.fetchall())
