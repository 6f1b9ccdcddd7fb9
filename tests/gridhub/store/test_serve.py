"""The embedded store over the ClickHouse HTTP interface, read-only and on loopback only."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from gridhub.errors import ConfigError
from gridhub.store.client import close_embedded
from gridhub.store.serve import StoreServer, loopback_only


@pytest.mark.parametrize("listen", ["127.0.0.1:8123", "localhost:8123", "[::1]:8123"])
def test_loopback_addresses_are_served(listen: str) -> None:
    host, port = loopback_only(listen)
    assert port == 8123
    assert host in ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize("listen", ["0.0.0.0:8123", "10.0.0.5:8123", "example.org:8123"])
def test_other_addresses_are_refused_with_the_reason(listen: str) -> None:
    with pytest.raises(ConfigError, match="enforces no roles"):
        loopback_only(listen)


# --- the ClickHouse HTTP interface, as clients use it -----------------------------------


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the module: chdb opens one path per process."""
    return tmp_path_factory.mktemp("served") / "store"


@pytest.fixture(scope="module")
def served(store_path: Path) -> Iterator[tuple[Any, str]]:
    """A store with one table, served read-only; (the hub's own client, the address)."""
    close_embedded()
    path = store_path
    hub = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    hub.command("CREATE DATABASE IF NOT EXISTS grid")
    hub.command(
        "CREATE TABLE grid.resident (resident_key String, born Date32, sources Array(String), "
        "phone Nullable(String)) ENGINE = MergeTree ORDER BY resident_key"
    )
    hub.insert(
        "grid.resident",
        [["k1", date(1950, 1, 2), ["police"], None], ["k2", date(2001, 3, 4), [], "13912345678"]],
        column_names=["resident_key", "born", "sources", "phone"],
    )
    server = StoreServer("127.0.0.1:0", str(path))
    server.start()
    yield hub, server.address
    server.stop()
    hub.close()


def http_client(address: str, database: str = "grid", **options: Any) -> Any:
    host, port = address.split(":")
    return clickhouse_connect.get_client(host=host, port=int(port), database=database, **options)


def test_clickhouse_connect_over_http_queries_binds_and_reads_dataframes(
    served: tuple[Any, str],
) -> None:
    _, address = served
    client = http_client(address)
    rows = client.query("SELECT * FROM resident ORDER BY resident_key").result_rows
    assert rows == [
        ("k1", date(1950, 1, 2), ["police"], None),
        ("k2", date(2001, 3, 4), [], "13912345678"),
    ]
    bound = client.query(
        "SELECT resident_key FROM resident WHERE born < {day:Date}",
        parameters={"day": "1990-01-01"},
    )
    assert bound.result_rows == [("k1",)]
    frame = client.query_df("SELECT resident_key, born FROM resident ORDER BY resident_key")
    assert list(frame["resident_key"]) == ["k1", "k2"]
    assert client.command("SELECT count() FROM resident") == 2
    threads = client.command("SELECT getSetting('max_threads')", settings={"max_threads": 3})
    assert int(threads) == 3  # a setting of the request reaches the query
    for codec in ("zstd", "lz4"):
        compressed = http_client(address, compress=codec)
        assert compressed.query("SELECT count() FROM resident").result_rows == [(2,)]


def test_nobody_but_the_hub_writes(served: tuple[Any, str]) -> None:
    hub, address = served
    client = http_client(address)
    with pytest.raises(DatabaseError, match="readonly"):
        client.insert("resident", [["k3", date(2020, 1, 1), [], None]])
    with pytest.raises(DatabaseError, match="readonly"):
        client.command("DROP TABLE resident")
    with pytest.raises(DatabaseError, match="readonly"):  # not even by a setting of its own
        client.command("TRUNCATE TABLE resident", settings={"readonly": 0})
    assert hub.command("SELECT count() FROM grid.resident") == 2


WRITER_KEY = "writer-key-0123456789abcdef"


@pytest.fixture
def writable(served: tuple[Any, str], store_path: Path) -> Iterator[tuple[Any, str]]:
    """The same store served with a writer key, database ``w``: (own client, address)."""
    own, _ = served
    own.command("DROP DATABASE IF EXISTS w")
    own.command("CREATE DATABASE w")
    server = StoreServer("127.0.0.1:0", str(store_path), writer_key=WRITER_KEY)
    server.start()
    yield own, server.address
    server.stop()
    own.command("DROP DATABASE w")


def test_the_writer_inserts_chunked_compressed_native_and_rowbinary_and_others_may_not(
    writable: tuple[Any, str],
) -> None:
    own, address = writable
    writer = http_client(address, "w", username="gridhub", password=WRITER_KEY)
    writer.command(
        "CREATE TABLE resident (resident_key String, born Date32, sources Array(String), "
        "phone Nullable(String)) ENGINE = MergeTree ORDER BY resident_key"
    )
    rows = [["k1", date(1950, 1, 2), ["police"], None], ["k2", date(2001, 3, 4), [], "139"]]
    writer.insert("resident", rows)  # Native, lz4, chunked: clickhouse-connect's defaults
    zstd_writer = http_client(
        address, "w", username="gridhub", password=WRITER_KEY, compress="zstd"
    )
    zstd_writer.insert("resident", [["k3", date(1960, 5, 6), ["civil"], None]])
    # one row: 'k4', day 20000 (2024-10-04), [] and NULL
    row_binary = b"\x02k4" + (20000).to_bytes(4, "little", signed=True) + b"\x00\x01"
    writer.raw_insert(
        "resident", ["resident_key", "born", "sources", "phone"], row_binary, fmt="RowBinary"
    )
    writer.command("INSERT INTO resident SELECT 'k5', '1999-09-09', [], NULL")
    stored = own.query("SELECT resident_key, born FROM w.resident ORDER BY resident_key")
    assert [key for key, _ in stored.result_rows] == ["k1", "k2", "k3", "k4", "k5"]
    assert stored.result_rows[0] == ("k1", date(1950, 1, 2))
    assert stored.result_rows[3] == ("k4", date(2024, 10, 4))
    for stranger in (
        http_client(address, "w"),
        http_client(address, "w", username="gridhub", password="not-the-key"),
        http_client(address, "w", username="default", password=WRITER_KEY),
    ):
        with pytest.raises(DatabaseError, match="readonly"):
            stranger.insert("resident", [["k9", date(2020, 1, 1), [], None]])
        with pytest.raises(DatabaseError, match="readonly"):
            stranger.command("DROP TABLE resident")
        assert stranger.command("SELECT count() FROM resident") == 5  # reading is fine
    basic = httpx.post(
        f"http://{address}/?query=INSERT%20INTO%20w.resident%20FORMAT%20JSONEachRow",
        content=b'{"resident_key": "k6", "born": "2000-01-01", "sources": [], "phone": null}',
        auth=("gridhub", WRITER_KEY),
        timeout=10,
    )
    assert basic.status_code == 200, basic.text
    assert own.command("SELECT count() FROM w.resident") == 6


def test_curl_style_requests_formats_compression_and_errors(served: tuple[Any, str]) -> None:
    _, address = served
    base = f"http://{address}/"
    assert httpx.get(base + "ping").text == "Ok.\n"
    answer = httpx.get(
        base,
        params={"query": "SELECT resident_key FROM resident ORDER BY 1", "database": "grid",
                "default_format": "JSONEachRow"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert [json.loads(line)["resident_key"] for line in answer.text.splitlines()] == ["k1", "k2"]
    body = gzip.compress(b"SELECT count() FROM grid.resident FORMAT CSV")
    posted = httpx.post(base, content=body, headers={"Content-Encoding": "gzip"})
    assert (posted.status_code, posted.text) == (200, "2\n")
    packed = httpx.post(
        base + "?enable_http_compression=1",
        content=b"SELECT resident_key FROM grid.resident ORDER BY 1",
        headers={"Accept-Encoding": "gzip"},
    )  # clickhouse-connect's zstd and lz4 answers are read in the test above
    assert packed.headers["Content-Encoding"] == "gzip" and packed.text == "k1\nk2\n"
    assert httpx.post(base, content=b"").status_code == 400  # a POST without a query
    wrong = httpx.post(base, content=b"SELEC 1")
    assert wrong.status_code == 500
    assert wrong.headers["X-ClickHouse-Exception-Code"] == "62"
    assert wrong.text.startswith("Code: 62. DB::Exception: Syntax error")
    unknown = httpx.post(base + "?no_such_setting=1", content=b"SELECT 1")
    assert unknown.status_code == 400 and "no_such_setting" in unknown.text
