"""Polls the civil-affairs table ``public.jzdx`` (see ``base/table_source.py``).

``updated_at`` is set by a trigger to the writing transaction's start, in
microseconds, so a long transaction commits rows stamped before rows already
read: the lookback window covers that. A soft delete (``deleted = true``) is
an update like any other and is published as a new version; the merge makes
it contribute nothing (identity.md). The roster folder is read by its own
connector.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gridhub.connectors.base.table_source import TableSource, TableSpec
from gridhub.connectors.civil_affairs.client import CivilClient

from gridhub.config import CivilSourceConfig, PolledTablesConfig

TABLES = (
    TableSpec(entity="jzdx", table="public.jzdx", key="id", stamp="updated_at", schema="JzdxRow"),
)


class CivilSource(TableSource):
    """The 民政救助 database connector."""

    name = "civil"
    stamp_format = None  # ISO 8601, microseconds, UTC

    tables = TABLES

    def make_client(self, config: PolledTablesConfig) -> CivilClient:
        """psycopg on ``[sources.civil] dsn``."""
        assert isinstance(config, CivilSourceConfig)
        return CivilClient(config.dsn.get_secret_value())

    @property
    def floor(self) -> datetime:
        """Before any ``updated_at``."""
        return datetime(1900, 1, 1, tzinfo=UTC)
