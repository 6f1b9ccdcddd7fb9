"""Base classes and annotated types shared by every model.

Two families of models exist, with different duties:

* ``SourceModel`` mirrors what a source system sends. It checks shape only
  (types, required fields, the spec's enumerations) and keeps values exactly
  as received, so that the normaliser can judge identity and say why it
  rejects a record. Unknown extra fields are ignored: a source adding a field
  must not stop the hub.
* ``HubModel`` is what the hub itself produces (canonical events, merged rows,
  envelopes). Extra fields are forbidden and timestamps are normalised to UTC
  milliseconds, the precision of the ClickHouse tables.

Both validate strictly (no silent ``"12"`` -> ``12`` coercion). Fields whose
source format is text by nature (ISO-8601 strings of the party API, numbers
in roster files) opt into parsing explicitly.

Timestamp precision on the wire: times a source stamped are kept at microsecond
precision (Avro ``timestamp-micros`` / ``local-timestamp-micros``) so nothing a
source sends is lost; times the hub stamps are ``UtcMillis`` (Avro
``timestamp-millis``).
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NaiveDatetime,
)

LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1
UINT32_MAX: Final = 2**32 - 1

TSource = Literal["party", "police", "civil", "hotline"]
TEntity = Literal[
    "members",
    "activities",
    "syrk",
    "jq",
    "jzdx",
    "roster_elderly",
    "roster_disability",
    "roster_editions",
    "tickets",
]

ENTITY_SOURCE: Final[dict[str, str]] = {
    "members": "party",
    "activities": "party",
    "syrk": "police",
    "jq": "police",
    "jzdx": "civil",
    "roster_elderly": "civil",
    "roster_disability": "civil",
    "roster_editions": "civil",
    "tickets": "hotline",
}
"""The source system each entity belongs to."""


def check_entity_source(source: str, entity: str) -> None:
    """Reject an entity paired with the wrong source system.

    Raises:
        ValueError: when ``entity`` does not belong to ``source``.
    """
    if ENTITY_SOURCE.get(entity) != source:
        raise ValueError(f"entity {entity!r} does not belong to source {source!r}")


def to_utc_millis(value: datetime) -> datetime:
    """Convert an aware datetime to UTC and drop sub-millisecond digits.

    The hub stamps and compares times at ClickHouse ``DateTime64(3)``
    precision; normalising here makes an Avro round trip exact.
    """
    utc = value.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)


def _parse_iso_datetime(value: object) -> object:
    """Parse ISO-8601 text; leave anything else for strict validation to judge."""
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


def _parse_iso_date(value: object) -> object:
    """Parse ``YYYY-MM-DD`` text only (not the compact forms Python also reads)."""
    if isinstance(value, str):
        if len(value) != 10 or value[4] != "-" or value[7] != "-":
            raise ValueError(f"expected a YYYY-MM-DD date, got {value!r}")
        return date.fromisoformat(value)
    return value


UtcMillis = Annotated[AwareDatetime, AfterValidator(to_utc_millis)]
"""A time the hub stamps: aware, converted to UTC, millisecond precision."""

IsoAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_parse_iso_datetime)]
"""A source time sent as ISO-8601 text with an offset (or already parsed)."""

IsoDate = Annotated[date, BeforeValidator(_parse_iso_date)]
"""A source date sent as ``YYYY-MM-DD`` text (or already parsed)."""

LocalDatetime = NaiveDatetime
"""A database ``DATETIME``: naive, China local time (UTC+8)."""

NonNegativeLong = Annotated[int, Field(ge=0, le=LONG_MAX)]
UInt32 = Annotated[int, Field(ge=0, le=UINT32_MAX)]
EpochMillis = Annotated[int, Field(ge=0, le=LONG_MAX)]
"""Unix epoch milliseconds, as the hotline API sends them."""

Money = Annotated[Decimal, Field(max_digits=10, decimal_places=2)]
"""``NUMERIC(10,2)`` yuan amounts: exact, Avro ``decimal(10,2)``."""

MoneyText = Annotated[Decimal, Field(strict=False, max_digits=10, decimal_places=2)]
"""A roster amount: CSV text or a spreadsheet number, read as ``decimal(10,2)``."""

Coordinate = Annotated[Decimal, Field(max_digits=10, decimal_places=6)]
"""``DECIMAL(10,6)`` longitude or latitude: exact, Avro ``decimal(10,6)``."""

GridCode = Annotated[str, Field(pattern=r"^[0-9]{15}$")]
"""A unified comprehensive grid (综合网格) code: 15 digits."""

CommunityCode = Annotated[str, Field(pattern=r"^[0-9]{12}$")]
TPlacement = Literal["address_id", "address_match", "coordinates", "crosswalk", "unplaced"]
"""A community/village (社区/村) statistical division code: 12 digits."""

StreetCode = Annotated[str, Field(pattern=r"^[0-9]{9}$")]
"""A street/town (街道/乡镇) code: 9 digits."""

IdNumber = Annotated[str, Field(pattern=r"^[0-9]{17}[0-9X]$")]
"""A normalised 公民身份号码: 18 characters, upper-case ``X``."""

JsonText = Annotated[str, Field(min_length=1)]
"""JSON text of a record or cursor, as produced by a connector."""


class SourceModel(BaseModel):
    """A record as a source system sends it; shape checks only."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class HubModel(BaseModel):
    """A record the hub produces; strict, closed, UTC-millisecond times."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
