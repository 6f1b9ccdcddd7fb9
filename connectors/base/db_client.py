"""A read-only database client that reconnects after a failure and maps driver errors.

The hub's accounts are read-only and may add nothing to a source database, so a
client only runs ``SELECT`` statements. Every driver error becomes
:class:`~gridhub.errors.SourceUnavailable` (databases restart, connections
drop mid-query): the connection is dropped, the source's loop backs off, and
the poll is retried from the checkpoint with a new connection.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from gridhub.errors import SourceUnavailable


class ReadOnlyDatabase(ABC):
    """Runs queries over one connection, made on first use and after each failure."""

    source: str
    """The source's name, for errors."""
    driver_error: type[Exception]
    """The driver's base exception class."""

    def __init__(self) -> None:
        self._conn: Any = None

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection in autocommit mode (each query sees the latest commits)."""

    @abstractmethod
    def _error_code(self, exc: Exception) -> str:
        """The driver's code for an error (MySQL number, SQLSTATE)."""

    @abstractmethod
    def _execute(self, conn: Any, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Rows of one statement as dicts."""

    @contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        try:
            yield
        except self.driver_error as exc:
            self.close()
            raise SourceUnavailable(
                self.source,
                f"database error {self._error_code(exc)} ({type(exc).__name__}); will retry",
                kind="database",
            ) from exc
        except OSError as exc:
            self.close()
            raise SourceUnavailable(
                self.source, f"connection failed ({exc.strerror or exc})", kind="connection"
            ) from exc

    def query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Rows of one statement.

        Raises:
            SourceUnavailable: the database failed; the connection is dropped.
        """
        with self._mapped_errors():
            if self._conn is None:
                self._conn = self._connect()
            return self._execute(self._conn, sql, params)

    def close(self) -> None:
        """Drop the connection; the next query reconnects."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()
