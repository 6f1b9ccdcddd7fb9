"""The canonical event: what the normaliser makes of any source record.

Every accepted source record, whatever its system, becomes one
``PersonEvent``. Identity fields are already normalised here (18-character ID,
digits-only unmasked phone, half-width trimmed name); a field the record did
not carry, or carried unusably, is ``None``.
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
    TEntity,
    TPlacement,
    TSource,
    UtcMillis,
    check_entity_source,
)

TLinkRule = Literal["id_number", "phone", "none"]
TAreaSystem = Literal["party", "police", "civil"]

# Place evidence both canonical events carry, described once.
Address = Annotated[str | None, Field(description="地址, as the source wrote it")]
AreaSystem = Annotated[
    TAreaSystem | None,
    Field(description="system of area_code: party, police or civil (crosswalk)"),
]
AreaCode = Annotated[
    str | None, Field(description="the source's own area code (党建网格, 警务责任区, 社区)")
]
Longitude = Annotated[float | None, Field(description="经度, WGS-84")]
Latitude = Annotated[float | None, Field(description="纬度, WGS-84")]
Payload = Annotated[JsonText, Field(description="JSON text of the source record as received")]


def _check_area(system: str | None, code: str | None) -> None:
    if (system is None) != (code is None):
        raise ValueError("area_system and area_code must be given together")


class PersonEvent(HubModel):
    """One version of one source record, normalised.

    ``resident_key`` is set exactly when ``link_rule`` is not ``"none"``: every
    link records the rule that made it.
    """

    source: Annotated[TSource, Field(description="source system: party, police, civil, hotline")]
    entity: Annotated[
        TEntity,
        Field(
            description="members, activities, syrk, jq, jzdx, roster_elderly, "
            "roster_disability or tickets"
        ),
    ]
    source_key: Annotated[str, Field(min_length=1, description="the record's key in its source")]
    event_time: Annotated[
        UtcMillis, Field(description="when the source stamped this version (UTC, ms)")
    ]
    ingested_at: Annotated[UtcMillis, Field(description="when the hub read it (UTC, ms)")]
    resident_key: Annotated[
        str | None, Field(min_length=1, description="居民键: the resident it links to")
    ] = None
    id_number: Annotated[
        IdNumber | None, Field(description="公民身份号码, normalised to 18 characters")
    ] = None
    link_rule: Annotated[
        TLinkRule, Field(description="rule that linked the resident: id_number, phone or none")
    ]
    name: Annotated[str | None, Field(description="姓名, normalised")] = None
    gender: Annotated[Literal["男", "女"] | None, Field(description="性别: 男 or 女")] = None
    birth_date: Annotated[date | None, Field(description="出生日期")] = None
    phone: Annotated[
        str | None,
        Field(pattern=r"^[0-9]+$", description="联系电话, normalised digits, never masked"),
    ] = None
    phone_time: Annotated[
        UtcMillis | None,
        Field(description="time of the phone observation (UTC, ms); null for untimed sources"),
    ] = None
    address: Address = None
    address_id: Annotated[
        str | None, Field(description="标准地址编码 when the source gave one")
    ] = None
    area_system: AreaSystem = None
    area_code: AreaCode = None
    lng: Longitude = None
    lat: Latitude = None
    placement: Annotated[
        TPlacement | None,
        Field(
            description="how the normaliser placed the address evidence: address_id, "
            "address_match, coordinates, crosswalk, unplaced; null when not yet placed"
        ),
    ] = None
    grid_code: Annotated[
        GridCode | None, Field(description="综合网格 the evidence places it in; null if none")
    ] = None
    community_code: Annotated[
        CommunityCode | None, Field(description="社区代码 of that grid, or the community named")
    ] = None
    attributes: Annotated[
        dict[str, str],
        Field(description="source-specific facts, e.g. population_type, deregistered, status"),
    ]
    payload: Payload

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        """Reject a wrong source/entity pair and a link without its rule."""
        check_entity_source(self.source, self.entity)
        if (self.link_rule == "none") != (self.resident_key is None):
            raise ValueError("resident_key must be set exactly when link_rule is not 'none'")
        _check_area(self.area_system, self.area_code)
        return self


TAreaKind = Literal["activity", "ticket", "incident"]


class AreaEvent(HubModel):
    """One version of a source record that counts for a grid, normalised.

    Grid figures that are not a resident's (a party activity's volunteer
    hours, a ticket or an incident linked to nobody) travel as area events,
    keyed by the grid or department area they name, so that the grid merge
    can count them where they are placed (``outputs.md``, ``grid.area``).
    """

    source: Annotated[TSource, Field(description="source system: party, police, civil, hotline")]
    entity: Annotated[TEntity, Field(description="activities, jq or tickets")]
    source_key: Annotated[str, Field(min_length=1, description="the record's key in its source")]
    kind: Annotated[TAreaKind, Field(description="activity, ticket or incident")]
    event_time: Annotated[
        UtcMillis, Field(description="when the source stamped this version (UTC, ms)")
    ]
    occurred_at: Annotated[
        UtcMillis,
        Field(description="when it happened: occurredAt, createTime or bjsj (30-day windows)"),
    ]
    ingested_at: Annotated[UtcMillis, Field(description="when the hub read it (UTC, ms)")]
    resident_key: Annotated[
        str | None, Field(min_length=1, description="居民键 when the record links to a resident")
    ] = None
    address: Address = None
    area_system: AreaSystem = None
    area_code: AreaCode = None
    lng: Longitude = None
    lat: Latitude = None
    is_open: Annotated[bool, Field(description="an open ticket (not 办结 or 回访)")] = False
    hours: Annotated[
        float, Field(ge=0, description="volunteer hours of an activity; 0 when voided")
    ] = 0.0
    payload: Payload

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        """Reject a wrong source/entity pair and an area code without its system."""
        check_entity_source(self.source, self.entity)
        _check_area(self.area_system, self.area_code)
        return self
