"""One way to reach ClickHouse, embedded or not.

``clickhouse.url = "embedded"`` opens the chdb engine inside this process
through clickhouse-connect's ``chdb://`` backend; any other URL is a real
server over HTTP. Callers get the same ``Client`` API either way, so the sink
has a single code path.
"""

from __future__ import annotations

import threading
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from gridhub.config import GridhubSettings, redact_dsn
from gridhub.errors import EmbeddedRuntimeError, SinkBackpressure

_embedded: dict[tuple[Path, bool], Client] = {}
_lock = threading.Lock()


def store_path(settings: GridhubSettings) -> Path:
    """Folder of the embedded store."""
    return settings.data_dir / "store"


def open_client(settings: GridhubSettings, *, reader: bool = False) -> Client:
    """A client for the configured store (shared per process for the embedded one).

    ``reader=True`` gives the embedded store a second session of its own, for
    read-only queries: settings such as ``readonly`` stick to a chdb session,
    and must never reach the sink's.

    Raises:
        EmbeddedRuntimeError: the embedded store cannot be opened (held by another process).
        SinkBackpressure: a ClickHouse server does not answer.
    """
    if settings.clickhouse.embedded:
        path = store_path(settings)
        with _lock:
            if (path, reader) not in _embedded:
                path.mkdir(parents=True, exist_ok=True)
                try:
                    _embedded[path, reader] = clickhouse_connect.get_client(dsn=f"chdb://{path}")
                except Exception as exc:
                    raise EmbeddedRuntimeError(
                        f"the embedded store {path} could not be opened ({exc}); "
                        "another gridhub process may be holding it"
                    ) from exc
            return _embedded[path, reader]
    try:
        return clickhouse_connect.get_client(dsn=settings.clickhouse.url)
    except Exception as exc:
        raise SinkBackpressure(
            f"ClickHouse at {redact_dsn(settings.clickhouse.url)} does not answer: "
            f"{type(exc).__name__}"
        ) from exc


def close_embedded() -> None:
    """Close the embedded store so that this process, or another, can open one again."""
    with _lock:
        for client in _embedded.values():
            client.close()
        _embedded.clear()
