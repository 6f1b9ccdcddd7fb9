"""Polls the public-security tables ``syrk`` and ``jq`` (see ``base/table_source.py``).

``gxsj`` has second precision and is China local time, as the tables store it.
"""

from __future__ import annotations

from datetime import datetime

from gridhub.connectors.base.checkpoint import Checkpoint
from gridhub.connectors.base.publisher import EnvelopePublisher
from gridhub.connectors.base.table_source import TableSource, TableSpec
from gridhub.connectors.public_security.client import PoliceClient

from gridhub.config import PoliceSourceConfig

TABLES = (
    TableSpec(entity="syrk", table="syrk", key="rkbh", stamp="gxsj", schema="SyrkRow"),
    TableSpec(entity="jq", table="jq", key="jqbh", stamp="gxsj", schema="JqRow"),
)


class PoliceSource(TableSource):
    """The 公安人口信息系统 connector."""

    name = "police"

    def __init__(
        self,
        config: PoliceSourceConfig,
        publisher: EnvelopePublisher,
        checkpoints: dict[str, Checkpoint],
        *,
        ack_on_publish: bool,
        entities: tuple[str, ...] = ("syrk", "jq"),
    ) -> None:
        self.config = config
        super().__init__(
            PoliceClient(config.dsn.get_secret_value()),
            tuple(spec for spec in TABLES if spec.entity in entities),
            publisher,
            checkpoints,
            ack_on_publish=ack_on_publish,
            poll_seconds=config.poll_seconds,
            lookback_seconds=config.lookback_seconds,
            batch_rows=config.batch_rows,
        )

    @property
    def floor(self) -> datetime:
        """Before any ``gxsj``."""
        return datetime(1900, 1, 1)
