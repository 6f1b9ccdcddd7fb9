"""The public-security population system, simulated in a real MariaDB.

``PoliceDatabase`` creates its own database with the tables ``syrk`` and
``jq`` exactly as spec/sources/public-security.md describes them, and lets a
test make every hazard of that page happen for real: rows sharing one
``gxsj`` second, writers whose transaction commits after newer rows were
read (``late_transaction``), and a database that drops its connections
(``kill_connections``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import pymysql
import pymysql.cursors

SYRK_COLUMNS = (
    "rkbh", "gmsfhm", "xm", "xb", "csrq", "lxdh", "hjdz", "jzdz", "dzbm", "rylb", "zrq",
    "zxbz", "gxsj",
)  # fmt: skip
JQ_COLUMNS = (
    "jqbh", "bjsj", "jqlb", "jqlbmc", "fadz", "zrq", "jd", "wd", "bjrxm", "bjrdh", "bjrsfzh",
    "jqzt", "gxsj",
)  # fmt: skip

DDL = (
    """
    CREATE TABLE syrk (
        rkbh   VARCHAR(20)  NOT NULL,
        gmsfhm VARCHAR(18)  NOT NULL,
        xm     VARCHAR(50)  NOT NULL,
        xb     CHAR(1)      NOT NULL,
        csrq   CHAR(8)      NOT NULL,
        lxdh   VARCHAR(30)  NULL,
        hjdz   VARCHAR(200) NULL,
        jzdz   VARCHAR(200) NOT NULL,
        dzbm   VARCHAR(32)  NULL,
        rylb   CHAR(2)      NOT NULL,
        zrq    VARCHAR(20)  NOT NULL,
        zxbz   CHAR(1)      NOT NULL,
        gxsj   DATETIME     NOT NULL,
        PRIMARY KEY (rkbh),
        KEY idx_syrk_gxsj (gxsj)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
    """,
    """
    CREATE TABLE jq (
        jqbh    VARCHAR(30)    NOT NULL,
        bjsj    DATETIME       NOT NULL,
        jqlb    VARCHAR(4)     NOT NULL,
        jqlbmc  VARCHAR(20)    NOT NULL,
        fadz    VARCHAR(200)   NOT NULL,
        zrq     VARCHAR(20)    NOT NULL,
        jd      DECIMAL(10, 6) NULL,
        wd      DECIMAL(10, 6) NULL,
        bjrxm   VARCHAR(50)    NULL,
        bjrdh   VARCHAR(30)    NULL,
        bjrsfzh VARCHAR(18)    NULL,
        jqzt    VARCHAR(10)    NOT NULL,
        gxsj    DATETIME       NOT NULL,
        PRIMARY KEY (jqbh),
        KEY idx_jq_gxsj (gxsj)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
    """,
)


def _upsert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    values = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f"{c} = VALUES({c})" for c in columns[1:])
    return f"INSERT INTO {table} ({names}) VALUES ({values}) ON DUPLICATE KEY UPDATE {updates}"


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    return f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"


def _values(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in rows]


class PoliceDatabase:
    """A throw-away ``ga_rkxx_<hex>`` database on the local MariaDB.

    Use as a context manager (creates on enter, drops on exit) or call
    ``create()`` and ``drop()`` yourself.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 3306,
        user: str = "root",
        password: str = "",
    ) -> None:
        self.name = name or f"ga_rkxx_{secrets.token_hex(4)}"
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self._conn: pymysql.connections.Connection[Any] | None = None

    @property
    def dsn(self) -> str:
        """``mysql://user[:password]@host:port/db`` for the hub's configuration."""
        auth = self.user + (f":{self._password}" if self._password else "")
        return f"mysql://{auth}@{self.host}:{self.port}/{self.name}"

    def connect(self, *, autocommit: bool = True) -> pymysql.connections.Connection[Any]:
        """A new connection to this database (the caller closes it)."""
        return self._server(database=self.name, autocommit=autocommit)

    def create(self) -> None:
        """Creates the database and both tables; the database must not exist yet."""
        with self._server() as admin, admin.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
            )
        self._conn = self.connect()
        with self._conn.cursor() as cur:
            for statement in DDL:
                cur.execute(statement)

    def drop(self) -> None:
        """Drops the database, first cutting every connection that still uses it."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.kill_connections()
        with self._server() as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")

    def __enter__(self) -> PoliceDatabase:
        self.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.drop()

    def load(self, syrk: Iterable[Mapping[str, Any]], jq: Iterable[Mapping[str, Any]] = ()) -> None:
        """Bulk-inserts rows (multi-row INSERTs; 50k rows take a few seconds)."""
        with self._cursor() as cur:
            cur.executemany(_insert_sql("syrk", SYRK_COLUMNS), _values(syrk, SYRK_COLUMNS))
            cur.executemany(_insert_sql("jq", JQ_COLUMNS), _values(jq, JQ_COLUMNS))

    def upsert_syrk(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Inserts or updates ``syrk`` rows; each row carries its own ``gxsj``."""
        with self._cursor() as cur:
            cur.executemany(_upsert_sql("syrk", SYRK_COLUMNS), _values(rows, SYRK_COLUMNS))

    def upsert_jq(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Inserts or updates ``jq`` rows; each row carries its own ``gxsj``."""
        with self._cursor() as cur:
            cur.executemany(_upsert_sql("jq", JQ_COLUMNS), _values(rows, JQ_COLUMNS))

    def late_transaction(self) -> LateTransaction:
        """A writer holding its own transaction open until ``commit()``."""
        return LateTransaction(self.connect(autocommit=False))

    def kill_connections(self) -> int:
        """Kills every other session using this database, as a restart would.

        The database's own loading connection survives. Returns how many
        sessions were killed.
        """
        keep = {self._conn.thread_id()} if self._conn is not None else set()
        killed = 0
        with self._server() as admin, admin.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.PROCESSLIST"
                " WHERE db = %s AND id <> CONNECTION_ID()",
                (self.name,),
            )
            for (thread_id,) in cur.fetchall():
                if thread_id in keep:
                    continue
                try:
                    cur.execute(f"KILL CONNECTION {int(thread_id)}")
                    killed += 1
                except pymysql.err.OperationalError as exc:
                    if exc.args[0] != 1094:  # unknown thread id: it ended meanwhile
                        raise
        return killed

    def _cursor(self) -> pymysql.cursors.Cursor:
        if self._conn is None:
            raise RuntimeError(f"database {self.name} is not created")
        self._conn.ping(reconnect=True)
        return self._conn.cursor()

    def _server(
        self, *, database: str | None = None, autocommit: bool = True
    ) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self._password,
            database=database,
            charset="utf8mb4",
            autocommit=autocommit,
        )


class LateTransaction:
    """Upserts that only become visible on ``commit()``.

    A row stamped ``gxsj = T`` written here and committed after another
    session wrote and a reader read rows stamped ``T + 5 s`` is exactly the
    late-visible row of the spec. Use as a context manager: commits on a
    clean exit, rolls back on an exception, always closes.
    """

    def __init__(self, connection: pymysql.connections.Connection[Any]) -> None:
        self._conn = connection
        self._conn.begin()

    def upsert_syrk(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Writes ``syrk`` rows inside the open transaction."""
        with self._conn.cursor() as cur:
            cur.executemany(_upsert_sql("syrk", SYRK_COLUMNS), _values(rows, SYRK_COLUMNS))

    def upsert_jq(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Writes ``jq`` rows inside the open transaction."""
        with self._conn.cursor() as cur:
            cur.executemany(_upsert_sql("jq", JQ_COLUMNS), _values(rows, JQ_COLUMNS))

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

    def __enter__(self) -> LateTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._conn.open:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
