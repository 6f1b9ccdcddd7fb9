"""Polls the public-security tables ``syrk`` and ``jq`` (see ``base/table_source.py``).

``gxsj`` has second precision and is China local time, as the tables store it.
"""

from __future__ import annotations

from datetime import datetime

from gridhub.connectors.base.checkpoint import Position
from gridhub.connectors.base.table_source import TableSource, TableSpec
from gridhub.connectors.base.table_window import TIME_FORMAT
from gridhub.connectors.public_security.client import PoliceClient
from gridhub.streams.normalize import CHINA_TZ

from gridhub.config import PoliceSourceConfig, PolledTablesConfig

TABLES = (
    TableSpec(entity="syrk", table="syrk", key="rkbh", stamp="gxsj", schema="SyrkRow"),
    TableSpec(entity="jq", table="jq", key="jqbh", stamp="gxsj", schema="JqRow"),
)


class PoliceSource(TableSource):
    """The 公安人口信息系统 connector."""

    name = "police"

    tables = TABLES

    def make_client(self, config: PolledTablesConfig) -> PoliceClient:
        """PyMySQL on ``[sources.police] dsn``."""
        assert isinstance(config, PoliceSourceConfig)
        return PoliceClient(config.dsn.get_secret_value())

    @property
    def floor(self) -> datetime:
        """Before any ``gxsj``."""
        return datetime(1900, 1, 1)

    @classmethod
    def position_since(cls, since: datetime) -> Position:
        """``gxsj`` is China local time at second precision, kept as the tables print it."""
        local = since.astimezone(CHINA_TZ).replace(tzinfo=None)
        return {"low": local.strftime(TIME_FORMAT), "seen": {}}
