"""A new grid map re-places the records that belong to no resident.

Residents are re-placed by the merge, from their state (``ResidentMerger.ensure_placed``).
Records linked to no resident are not in any state: an unlinked ticket or
incident lives in ``grid.unlinked`` and ``grid.events``, a party activity in
``grid.events`` only (a fact about a grid). Their stored payload is the source
record as it came, so this module validates it with its model again, maps it
to its canonical event and places it with the new map; a record whose grid or
community changes is written again (same key, newer ``updated_at`` /
``ingested_at``, so the ReplacingMergeTree keeps the new placement). Records
that stay where they were are not touched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from gridhub.schemas import MODELS
from gridhub.streams.canonicalize import MAPPERS
from gridhub.streams.placement import Placer
from gridhub.streams.route import SCHEMA_OF
from pydantic import ValidationError

from gridhub.logs import get_logger
from gridhub.reference import ReferenceData

log = get_logger("streams.replace_unlinked")

EVENT_COLUMNS = ("source", "entity", "source_key", "event_time", "ingested_at", "resident_key",
                 "grid_code", "payload", "link_rule")  # fmt: skip
UNLINKED_COLUMNS = ("source", "entity", "source_key", "event_time", "why", "grid_code",
                    "community_code", "payload", "updated_at")  # fmt: skip


def _canonical(source: str, entity: str, payload: str, now: datetime) -> dict[str, Any] | None:
    """The record's canonical event from its stored payload, or None if it no longer
    reads (it was stored, so this only happens after a model change)."""
    try:
        model = MODELS[SCHEMA_OF[entity]].model_validate(json.loads(payload))
        return MAPPERS[(source, entity)](model.model_dump(), None, now)
    except (KeyError, ValueError, ValidationError) as exc:
        log.warning("stored record not re-placed", entity=entity, reason=str(exc)[:200])
        return None


def replace_unlinked(client: Client, database: str, ref: ReferenceData) -> int:
    """Place every record without a resident with ``ref``; returns how many moved."""
    placer = Placer(ref)
    now = datetime.now(UTC)
    unlinked: list[list[Any]] = []
    events: list[list[Any]] = []
    rows = client.query(
        f"SELECT source, entity, source_key, event_time, why, grid_code, community_code, "
        f"payload FROM {database}.unlinked FINAL"
    ).result_rows
    for source, entity, key, event_time, why, grid, community, payload in rows:
        event = _canonical(source, entity, payload, now)
        if event is None:
            continue
        placement = placer(event)
        if (placement.grid_code, placement.community_code) == (grid, community):
            continue
        unlinked.append([source, entity, key, event_time, why, placement.grid_code,
                         placement.community_code, payload, now])  # fmt: skip
        events.append([source, entity, key, event_time, now, None, placement.grid_code, payload,
                       "none"])  # fmt: skip
    facts = client.query(
        f"SELECT source, entity, source_key, event_time, grid_code, payload "
        f"FROM {database}.events FINAL WHERE source = 'party' AND entity = 'activities'"
    ).result_rows
    for source, entity, key, event_time, grid, payload in facts:
        event = _canonical(source, entity, payload, now)
        if event is None:
            continue
        placement = placer(event)
        if placement.grid_code != grid:
            events.append([source, entity, key, event_time, now, None, placement.grid_code,
                           payload, "none"])  # fmt: skip
    if unlinked:
        client.insert(f"{database}.unlinked", unlinked, column_names=list(UNLINKED_COLUMNS))
    if events:
        client.insert(f"{database}.events", events, column_names=list(EVENT_COLUMNS))
    return len(events)
