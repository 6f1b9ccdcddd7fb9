"""Which pydantic model goes with which Avro schema and which source entity."""

from typing import Final

from pydantic import BaseModel

from .canonical import AreaEvent, PersonEvent
from .civil import DisabilitySubsidyRow, ElderlyAllowanceRow, JzdxRow, RosterEdition
from .envelope import BatchAck, Envelope, PhoneClaim, RowBatch
from .hotline import HotlineTicket
from .merged import (
    AreaRecord,
    DeadLetter,
    EventRow,
    GridDeparture,
    ResidentRecord,
    UnlinkedRecord,
)
from .party import PartyActivity, PartyMember
from .police import JqRow, SyrkRow

_ALL: Final[tuple[type[BaseModel], ...]] = (
    PartyMember,
    PartyActivity,
    SyrkRow,
    JqRow,
    JzdxRow,
    ElderlyAllowanceRow,
    DisabilitySubsidyRow,
    RosterEdition,
    HotlineTicket,
    PersonEvent,
    AreaEvent,
    ResidentRecord,
    AreaRecord,
    EventRow,
    DeadLetter,
    UnlinkedRecord,
    GridDeparture,
    Envelope,
    BatchAck,
    PhoneClaim,
    RowBatch,
)

MODELS: Final[dict[str, type[BaseModel]]] = {model.__name__: model for model in _ALL}
"""Schema name (the record name, also the ``.avsc`` file stem) -> model."""

ENTITY_MODELS: Final[dict[str, type[BaseModel]]] = {
    "members": PartyMember,
    "activities": PartyActivity,
    "syrk": SyrkRow,
    "jq": JqRow,
    "jzdx": JzdxRow,
    "roster_elderly": ElderlyAllowanceRow,
    "roster_disability": DisabilitySubsidyRow,
    "roster_editions": RosterEdition,
    "tickets": HotlineTicket,
}
"""Source entity (as in ``PersonEvent.entity``) -> the model of its records."""
