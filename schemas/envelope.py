"""The envelope: one connector batch on the hot path.

A connector publishes batches, not single records. Each element of
``records`` is one source record already in the Confluent wire format (see
``gridhub.schemas.serde``), so a consumer decodes only what it needs.
``cursor`` is the connector's position after this batch, as JSON text, so that
a consumer can checkpoint exactly what it has processed. A batch too large for
one message is split into ``partition_count`` parts numbered by ``part``.
"""

import json
from typing import Annotated, Self

from pydantic import AfterValidator, Field, model_validator

from .common import (
    HubModel,
    JsonText,
    NonNegativeLong,
    TEntity,
    TSource,
    UtcMillis,
    check_entity_source,
)
from .registry import HEADER_SIZE, MAGIC_BYTE


def _check_json(text: str) -> str:
    """Accept only text that parses as JSON."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"cursor is not JSON text: {exc}") from exc
    return text


def _check_wire_records(records: list[bytes]) -> list[bytes]:
    """Accept only elements that start like a Confluent wire-format message."""
    for index, record in enumerate(records):
        if len(record) < HEADER_SIZE or record[0] != MAGIC_BYTE:
            raise ValueError(
                f"records[{index}] is not in the wire format (magic byte 0 + 4-byte schema id)"
            )
    return records


class Envelope(HubModel):
    """A batch of one entity's records from one connector pull."""

    source: Annotated[TSource, Field(description="source system")]
    entity: Annotated[TEntity, Field(description="entity within the source")]
    seq: Annotated[NonNegativeLong, Field(description="connector batch number")]
    cursor: Annotated[
        JsonText,
        AfterValidator(_check_json),
        Field(description="JSON text of the connector position after this batch"),
    ]
    produced_at: Annotated[UtcMillis, Field(description="when the connector sent it (UTC, ms)")]
    records: Annotated[
        list[bytes],
        AfterValidator(_check_wire_records),
        Field(description="records, each in the Confluent wire format"),
    ]
    partition_count: Annotated[
        int, Field(ge=1, le=2**31 - 1, description="number of parts this batch was split into")
    ] = 1
    part: Annotated[int, Field(ge=0, le=2**31 - 1, description="this part's number, from 0")] = 0
    keys: Annotated[
        list[str],
        Field(
            description="the resident (or unlinked record) key of each record, in order; "
            "empty before routing",
        ),
    ] = []  # noqa: RUF012 (pydantic copies defaults; the Avro default must match)
    links: Annotated[
        list[str],
        Field(
            description="after the phone stage, each record's link rule in order: phone "
            "(identity.md rule 2), empty (waits unlinked), or withdraw (takes back the copy "
            "sent to this key before); empty otherwise",
        ),
    ] = []  # noqa: RUF012 (pydantic copies defaults; the Avro default must match)
    whys: Annotated[
        list[str],
        Field(
            description="after the phone stage, why each record that waits unlinked does; "
            "empty otherwise",
        ),
    ] = []  # noqa: RUF012 (pydantic copies defaults; the Avro default must match)
    again: Annotated[
        bool,
        Field(
            description="copies the phone stage sends again after a claim or a restart: "
            "not new source data (freshness leaves them out)",
        ),
    ] = False

    @model_validator(mode="after")
    def _check_parts(self) -> Self:
        """Reject a wrong source/entity pair and a part number out of range."""
        check_entity_source(self.source, self.entity)
        if self.part >= self.partition_count:
            raise ValueError(f"part {self.part} is out of range for {self.partition_count} parts")
        return self


class BatchAck(HubModel):
    """One part of a connector batch is stored in ClickHouse.

    The sink sends it on the ``acks`` topic; the process that runs the
    connector advances its checkpoint when every part of a batch is stored.
    """

    source: Annotated[str, Field(description="source system of the batch")]
    entity: Annotated[str, Field(description="entity of the batch")]
    seq: Annotated[NonNegativeLong, Field(description="the connector's batch number")]
    part: Annotated[int, Field(ge=0, le=2**31 - 1, description="the stored part, from 0")]
    parts: Annotated[
        int, Field(ge=1, le=2**31 - 1, description="how many parts the batch was split into")
    ]


class PhoneClaim(HubModel):
    """A resident has a phone on its own records, or no longer has it (the merge tells
    the phone stage, on ``phones``, keyed by the phone)."""

    phone: Annotated[str, Field(min_length=1, description="the normalised phone")]
    resident_key: Annotated[str, Field(min_length=1, description="the resident")]
    name: Annotated[str, Field(description="the resident's merged name")]
    present: Annotated[bool, Field(description="false: the phone is no longer the resident's")]


class RowBatch(HubModel):
    """Rows the merge stage built, on their way to the store (the ``rows`` topic).

    When the merge runs in a process of its own, it cannot write the embedded
    store (one process owns it), so it sends its rows here: one block per
    table in ClickHouse's ``Native`` format, inserted as it is (see
    ``gridhub.streams.row_batch``).
    ``acks`` are the connector batch parts these rows cover.
    """

    produced_at: Annotated[UtcMillis, Field(description="when the merge sent it (UTC, ms)")]
    tables: Annotated[
        list[str],
        Field(
            description="the row schema of each block "
            "(ResidentRecord, EventRow, UnlinkedRecord, GridDeparture)"
        ),
    ]
    blocks: Annotated[
        list[bytes],
        Field(description="each block: one table's rows in ClickHouse's Native format"),
    ]
    row_counts: Annotated[list[NonNegativeLong], Field(description="rows in each block")]
    acks: Annotated[
        list[bytes],
        AfterValidator(_check_wire_records),
        Field(description="BatchAck records (wire format) of the batch parts covered"),
    ]
    event_time_ms: Annotated[
        list[NonNegativeLong],
        Field(
            description="source time of each event in the blocks, epoch milliseconds "
            "(for freshness)"
        ),
    ] = []  # noqa: RUF012 (pydantic copies defaults; the Avro default must match)

    @model_validator(mode="after")
    def _check_blocks(self) -> Self:
        """Every block names its row schema and its row count."""
        if not len(self.tables) == len(self.blocks) == len(self.row_counts):
            raise ValueError("tables, blocks and row_counts must have the same length")
        return self
