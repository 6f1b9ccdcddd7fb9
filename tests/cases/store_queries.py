"""Reading the store in tests."""

from __future__ import annotations

from typing import Any


def query_rows(client: Any, sql: str, **settings: Any) -> list[tuple[Any, ...]]:
    """Rows of a query as tuples."""
    return [tuple(row) for row in client.query(sql, settings=settings or None).result_rows]
