"""Rows of the ClickHouse tables downstream teams query (see outputs.md).

One model per table: ``grid.resident``, ``grid.area``, ``grid.events``,
``grid.dead_letters`` and ``grid.unlinked``, and :class:`GridDeparture` for
``grid.resident_by_grid``. Column names and meanings are the
contract; types narrow ClickHouse's to what the hub writes. ``version`` is a
``UInt64`` column, but the hub keeps it below 2**63 so that it also fits an
Avro ``long``.
"""

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from .common import (
    CommunityCode,
    GridCode,
    HubModel,
    IdNumber,
    JsonText,
    NonNegativeLong,
    StreetCode,
    TEntity,
    TPlacement,
    TSource,
    UInt32,
    UtcMillis,
    check_entity_source,
)

TPopulationType = Literal["户籍", "流动", "境外", ""]
TAssistance = Literal["低保", "特困", "临时救助", "高龄津贴", "残疾人补贴"]


class ResidentRecord(HubModel):
    """A row of ``grid.resident``: one resident after the merge."""

    resident_key: Annotated[
        str,
        Field(min_length=1, description="居民键: keyed hash of the ID number or linking evidence"),
    ]
    id_number: Annotated[
        IdNumber | None, Field(description="公民身份号码, normalised; restricted")
    ] = None
    name: Annotated[str, Field(description="姓名, survivor of the merge")]
    gender: Annotated[
        Literal["男", "女", ""], Field(description="性别: 男, 女, or empty if unknown")
    ]
    birth_date: Annotated[date | None, Field(description="出生日期")] = None
    phone: Annotated[
        str | None, Field(pattern=r"^[0-9]+$", description="联系电话, normalised digits")
    ] = None
    grid_code: Annotated[
        GridCode | None, Field(description="综合网格 code, 15 digits; null while unplaced")
    ] = None
    community_code: Annotated[CommunityCode | None, Field(description="社区代码, 12 digits")] = None
    address: Annotated[str, Field(description="居住地址")]
    placement: Annotated[
        TPlacement,
        Field(
            description="how the grid was found: address_id, address_match, coordinates, "
            "crosswalk, unplaced"
        ),
    ]
    population_type: Annotated[
        TPopulationType, Field(description="人口类型: 户籍, 流动, 境外, or empty")
    ]
    deregistered: Annotated[bool, Field(description="已注销 (police zxbz = 1)")]
    is_party_member: Annotated[bool, Field(description="在册党员, active party member")]
    party_branch: Annotated[str, Field(description="党支部")]
    double_report_community: Annotated[
        CommunityCode | None, Field(description="双报到社区代码")
    ] = None
    assistance: Annotated[
        list[TAssistance],
        Field(description="current assistance: 低保, 特困, 临时救助, 高龄津贴, 残疾人补贴"),
    ]
    hotline_tickets: Annotated[UInt32, Field(description="12345 tickets linked to this resident")]
    hotline_open: Annotated[UInt32, Field(description="of which still open")]
    incidents: Annotated[UInt32, Field(description="警情 where this resident was the reporter")]
    sources: Annotated[
        list[TSource],
        Field(description="systems that know this resident: party, police, civil, hotline"),
    ]
    field_sources: Annotated[
        dict[str, str], Field(description="field -> source@timestamp of the value that won")
    ]
    conflicts: Annotated[list[str], Field(description="conflicts awaiting verification (信息核实)")]
    version: Annotated[NonNegativeLong, Field(description="merge version for ReplacingMergeTree")]
    updated_at: Annotated[
        UtcMillis, Field(description="when the merge produced this row (UTC, ms)")
    ]

    @model_validator(mode="after")
    def _check_open_tickets(self) -> Self:
        """Open tickets are a subset of the linked tickets."""
        if self.hotline_open > self.hotline_tickets:
            raise ValueError("hotline_open cannot exceed hotline_tickets")
        return self


class AreaRecord(HubModel):
    """A row of ``grid.area``: one unified grid's figures."""

    grid_code: Annotated[GridCode, Field(description="综合网格 code, 15 digits")]
    grid_name: Annotated[str, Field(description="网格名称")]
    community_code: Annotated[CommunityCode, Field(description="社区代码, 12 digits")]
    street_code: Annotated[StreetCode, Field(description="街道/乡镇代码, 9 digits")]
    residents: Annotated[UInt32, Field(description="residents placed here, deregistered included")]
    floating_population: Annotated[UInt32, Field(description="流动人口 placed here")]
    deregistered: Annotated[UInt32, Field(description="deregistered residents placed here")]
    party_members: Annotated[UInt32, Field(description="active (在册) party members placed here")]
    double_report_members: Annotated[
        UInt32, Field(description="active members living here who did 双报到 into this community")
    ]
    assistance_recipients: Annotated[UInt32, Field(description="residents with current assistance")]
    elderly_80_plus: Annotated[
        UInt32, Field(description="residents 80 or older today (China time)")
    ]
    hotline_tickets_30d: Annotated[
        UInt32, Field(description="tickets created in the last 30 days, linked or placed here")
    ]
    hotline_open: Annotated[UInt32, Field(description="open tickets, whatever their age")]
    incidents_30d: Annotated[
        UInt32, Field(description="警情 reported in the last 30 days, linked or placed here")
    ]
    volunteer_hours_30d: Annotated[
        float, Field(ge=0, description="activity hours of the last 30 days mapped here")
    ]
    unplaced_nearby: Annotated[
        UInt32, Field(description="community-level figure: aggregate with any(), not sum()")
    ]
    updated_at: Annotated[UtcMillis, Field(description="when this row was computed (UTC, ms)")]


class EventRow(HubModel):
    """A row of ``grid.events``: every accepted source record once."""

    source: Annotated[TSource, Field(description="source system")]
    entity: Annotated[TEntity, Field(description="entity within the source")]
    source_key: Annotated[str, Field(min_length=1, description="the record's key in its source")]
    event_time: Annotated[UtcMillis, Field(description="when the source stamped this version")]
    ingested_at: Annotated[UtcMillis, Field(description="when the hub read it")]
    resident_key: Annotated[str | None, Field(description="linked resident, if any")] = None
    grid_code: Annotated[GridCode | None, Field(description="综合网格 where it was placed")] = None
    payload: Annotated[JsonText, Field(description="JSON text of the source record")]
    link_rule: Annotated[
        str, Field(description="the rule that linked it: id_number, phone or none")
    ] = ""

    @model_validator(mode="after")
    def _check_entity(self) -> Self:
        """Reject an entity paired with the wrong source."""
        check_entity_source(self.source, self.entity)
        return self


class DeadLetter(HubModel):
    """A row of ``grid.dead_letters``: a record the hub could not accept.

    ``source`` and ``entity`` are free strings on purpose: a dead letter must
    be recordable even when its origin is itself malformed.
    """

    source: Annotated[str, Field(description="source system, as far as known")]
    entity: Annotated[str, Field(description="entity, as far as known")]
    source_key: Annotated[
        str | None, Field(description="the record's key in its source, when it could be read")
    ] = None
    reason: Annotated[str, Field(min_length=1, description="why the record was rejected")]
    raw: Annotated[bytes, Field(description="the record's bytes as received")]
    received_at: Annotated[UtcMillis, Field(description="when the hub received it (UTC, ms)")]


class UnlinkedRecord(HubModel):
    """A row of ``grid.unlinked``: a record waiting for a resident or a grid."""

    source: Annotated[TSource, Field(description="source system")]
    entity: Annotated[TEntity, Field(description="entity within the source")]
    source_key: Annotated[str, Field(min_length=1, description="the record's key in its source")]
    event_time: Annotated[UtcMillis, Field(description="when the source stamped this version")]
    why: Annotated[str, Field(min_length=1, description="why it is waiting")]
    grid_code: Annotated[GridCode | None, Field(description="综合网格, when placed")] = None
    community_code: Annotated[
        CommunityCode | None, Field(description="社区代码, when only the community is known")
    ] = None
    payload: Annotated[JsonText, Field(description="JSON text of the source record")]
    updated_at: Annotated[UtcMillis, Field(description="when this row was written (UTC, ms)")]
    is_deleted: Annotated[
        int, Field(ge=0, le=1, description="1: the record no longer waits (it linked later)")
    ] = 0

    @model_validator(mode="after")
    def _check_entity(self) -> Self:
        """Reject an entity paired with the wrong source."""
        check_entity_source(self.source, self.entity)
        return self


class GridDeparture(HubModel):
    """A resident is no longer in a grid: hides its row there in ``grid.resident_by_grid``.

    That table is ``grid.resident`` again, ordered by grid so that a grid's residents
    are read without a full scan; its key includes the grid, so a resident who moves
    leaves a row under the old grid that only this later, deleting version hides.
    """

    resident_key: Annotated[str, Field(min_length=1, description="居民键 of the resident")]
    grid_code: Annotated[
        GridCode | None, Field(description="the grid left; null: the resident was unplaced")
    ] = None
    version: Annotated[
        NonNegativeLong, Field(description="the version of the resident's row in its new grid")
    ]
    updated_at: Annotated[UtcMillis, Field(description="when the merge moved the resident")]
    is_deleted: Annotated[int, Field(ge=1, le=1, description="always 1: a deleting version")] = 1
