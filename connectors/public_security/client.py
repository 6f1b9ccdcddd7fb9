"""The public-security database over PyMySQL (see ``base/db_client.py`` for errors)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.cursors
from gridhub.connectors.base.db_client import ReadOnlyDatabase

from gridhub.errors import ConfigError

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


class PoliceClient(ReadOnlyDatabase):
    """The police database over PyMySQL (dict rows)."""

    source = SOURCE
    driver_error = pymysql.err.Error

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._kwargs = connect_kwargs(dsn)

    def _connect(self) -> Any:
        return pymysql.connect(**self._kwargs)

    def _error_code(self, exc: Exception) -> str:
        return str(exc.args[0]) if exc.args else "?"

    def _execute(self, conn: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
