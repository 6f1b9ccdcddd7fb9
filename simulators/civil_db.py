"""The civil-affairs assistance database, simulated in a real PostgreSQL.

``CivilDatabase`` creates its own ``mz_<hex>`` database with ``public.jzdx``
as spec/sources/civil-affairs.md describes it. A trigger stamps
``updated_at = now()`` on every insert and update; ``now()`` is the start of
the writing transaction, so a long transaction (``late_transaction``)
commits rows whose ``updated_at`` is older than rows other sessions
committed meanwhile, exactly the late-visible rows of the spec.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

JZDX_COLUMNS = (
    "sfzh", "xm", "jzlx", "jtrk", "bzje", "ksrq", "jsrq", "sqdm", "jtzz", "lxdh", "hzsfzh",
    "deleted",
)  # fmt: skip

DDL = (
    """
    CREATE TABLE public.jzdx (
        id         BIGSERIAL     PRIMARY KEY,
        sfzh       VARCHAR(18)   NOT NULL,
        xm         VARCHAR(50)   NOT NULL,
        jzlx       VARCHAR(10)   NOT NULL,
        jtrk       INTEGER       NOT NULL,
        bzje       NUMERIC(10,2) NOT NULL,
        ksrq       DATE          NOT NULL,
        jsrq       DATE          NULL,
        sqdm       CHAR(12)      NOT NULL,
        jtzz       VARCHAR(200)  NOT NULL,
        lxdh       VARCHAR(30)   NULL,
        hzsfzh     VARCHAR(18)   NULL,
        deleted    BOOLEAN       NOT NULL DEFAULT false,
        updated_at TIMESTAMPTZ   NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX jzdx_updated_at_id ON public.jzdx (updated_at, id)",
    """
    CREATE FUNCTION public.jzdx_touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER jzdx_touch BEFORE INSERT OR UPDATE ON public.jzdx
    FOR EACH ROW EXECUTE FUNCTION public.jzdx_touch()
    """,
)

_INSERT = sql.SQL("INSERT INTO public.jzdx ({}) VALUES ({}) RETURNING id").format(
    sql.SQL(", ").join(map(sql.Identifier, JZDX_COLUMNS)),
    sql.SQL(", ").join(sql.Placeholder() * len(JZDX_COLUMNS)),
)


def _write(conn: psycopg.Connection[Any], rows: Iterable[Mapping[str, Any]]) -> list[int]:
    """Inserts rows without ``id``; updates rows that carry one. Returns the ids.

    An update sets only the columns the row carries, so ``{"id": 5,
    "jsrq": date(...)}`` ends an assistance without restating the rest.
    """
    ids: list[int] = []
    with conn.cursor() as cur:
        for row in rows:
            if "id" not in row:
                cur.execute(_INSERT, [row[c] for c in JZDX_COLUMNS])
                created = cur.fetchone()
                assert created is not None
                ids.append(int(created[0]))
                continue
            columns = [c for c in JZDX_COLUMNS if c in row]
            statement = sql.SQL("UPDATE public.jzdx SET {} WHERE id = %s").format(
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
            )
            cur.execute(statement, [*(row[c] for c in columns), row["id"]])
            if cur.rowcount != 1:
                raise KeyError(f"jzdx has no row with id {row['id']}")
            ids.append(int(row["id"]))
    return ids


def _soft_delete(conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    conn.execute("UPDATE public.jzdx SET deleted = true WHERE id = ANY(%s)", [list(ids)])


class CivilDatabase:
    """A throw-away ``mz_<hex>`` database on the local PostgreSQL.

    Use as a context manager (creates on enter, drops on exit) or call
    ``create()`` and ``drop()`` yourself.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 5432,
        user: str = "postgres",
    ) -> None:
        self.name = name or f"mz_{secrets.token_hex(4)}"
        self.host = host
        self.port = port
        self.user = user
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def dsn(self) -> str:
        """``postgresql://user@host:port/db`` for the hub's configuration."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        """A new connection to this database (the caller closes it)."""
        return psycopg.connect(self.dsn, autocommit=autocommit)

    def create(self) -> None:
        """Creates the database, the table and its trigger."""
        with self._server() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self._conn = self.connect()
        for statement in DDL:
            self._conn.execute(statement)

    def drop(self) -> None:
        """Drops the database, cutting every connection that still uses it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with self._server() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def __enter__(self) -> CivilDatabase:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.drop()

    def load(self, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        """Bulk-inserts rows (without ``id``) in one transaction; returns their ids."""
        params = [[row[c] for c in JZDX_COLUMNS] for row in rows]
        ids: list[int] = []
        if not params:
            return ids
        conn = self._require()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_INSERT, params, returning=True)
            while True:
                created = cur.fetchone()
                assert created is not None
                ids.append(int(created[0]))
                if not cur.nextset():
                    break
        return ids

    def upsert(self, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        """Inserts rows without ``id`` and updates rows with one, each on its own."""
        return _write(self._require(), rows)

    def soft_delete(self, ids: Sequence[int]) -> None:
        """Marks rows as entered in error (``deleted = true``)."""
        _soft_delete(self._require(), ids)

    def late_transaction(self) -> CivilLateTransaction:
        """A writer whose transaction (and so its ``now()``) starts right away."""
        return CivilLateTransaction(self.connect(autocommit=False))

    def kill_connections(self) -> int:
        """Terminates every other session using this database, as a restart would."""
        keep = self._conn.info.backend_pid if self._conn is not None else 0
        with self._server() as admin:
            cur = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> %s",
                [self.name, keep],
            )
            return sum(1 for (ok,) in cur.fetchall() if ok)

    def _require(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise RuntimeError(f"database {self.name} is not created")
        if self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def _server(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        )


class CivilLateTransaction:
    """Writes stamped with this transaction's start time, visible on ``commit()``.

    Use as a context manager: commits on a clean exit, rolls back on an
    exception, always closes.
    """

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._conn = connection
        row = self._conn.execute("SELECT now()").fetchone()
        assert row is not None
        self.started_at: datetime = row[0]
        """``now()`` of the transaction: the ``updated_at`` every write here gets."""

    def upsert(self, rows: Iterable[Mapping[str, Any]]) -> list[int]:
        """Inserts rows without ``id`` and updates rows with one."""
        return _write(self._conn, rows)

    def soft_delete(self, ids: Sequence[int]) -> None:
        """Marks rows as entered in error inside the transaction."""
        _soft_delete(self._conn, ids)

    def commit(self) -> None:
        """Makes the writes visible and closes the connection."""
        try:
            self._conn.commit()
        finally:
            self._conn.close()

    def rollback(self) -> None:
        """Discards the writes and closes the connection."""
        try:
            self._conn.rollback()
        finally:
            self._conn.close()

    def __enter__(self) -> CivilLateTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn.closed:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
