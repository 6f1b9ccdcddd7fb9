"""Placing a record on the unified grid, best evidence first (spec: reference-data.md).

The chain, as pure functions over one loaded :class:`~gridhub.reference.ReferenceData`:

1. ``address_id`` — a standard-address id (``syrk.dzbm``);
2. ``address_match`` — free text equal to a standard address or alias after
   :func:`normalize_address`;
3. ``coordinates`` — a point inside a grid polygon;
4. ``crosswalk`` — a department area code through the crosswalk's primary grid (approximate);
5. ``unplaced`` — kept with the reasons of every step tried, never dropped; when the text or
   a civil community code names a community, that community is kept for the grid worker.

Evidence that is present but fails (an unknown id, an address that matches nothing) does not
stop the chain: the next rule is tried and the failure is recorded in the result's notes, so
a placed record still tells a clerk that its ``dzbm`` was unknown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from gridhub.streams.normalize import normalize_address, split_address

from gridhub.reference import ReferenceData

__all__ = [
    "Placement",
    "PlacementMethod",
    "PlacementNote",
    "Placer",
    "normalize_address",
    "place",
    "placed",
]

PlacementMethod = Literal["address_id", "address_match", "coordinates", "crosswalk", "unplaced"]


class PlacementNote(StrEnum):
    """Why a piece of placement evidence did not place the record (stable strings)."""

    UNKNOWN_ADDRESS_ID = "地址编码不在标准地址库 (unknown standard-address id)"
    ADDRESS_TOO_VAGUE = "地址只写到乡镇 (address names nothing below the town)"
    ADDRESS_NO_MATCH = "地址未匹配标准地址 (address matches no standard address)"
    ADDRESS_OTHER_AREA = (
        "地址匹配的标准地址不在所写县/乡镇 (address matches only outside the county/town it names)"
    )
    ADDRESS_AMBIGUOUS = "地址匹配多个网格的标准地址 (address matches buildings in several grids)"
    COORDINATES_INVALID = "坐标不完整或超出范围 (coordinates incomplete or out of range)"
    COORDINATES_OUTSIDE = "坐标不在任何网格内 (coordinates inside no grid)"
    AREA_WITHOUT_SYSTEM = "区域代码未注明所属系统 (area code given without its system)"
    AREA_UNKNOWN = "区域代码不在对照表 (area code not in the crosswalk)"
    NOTHING_GIVEN = "无地址、坐标或区域代码 (no address, coordinates or area code)"
    COMMUNITY_ONLY = "仅能定位到社区 (only the community is known)"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a record sits on the grid and how that was found.

    Attributes:
        method: the rule that placed it, or ``"unplaced"``.
        grid_code: the unified grid; ``None`` when unplaced.
        community_code: the grid's community; for an unplaced record, the community its
            text or civil community code names, when that is all that is known.
        address_id: the standard address matched, when exactly one building matched.
        notes: what was tried and failed before the rule that placed it (or all of it).
    """

    method: PlacementMethod
    grid_code: str | None = None
    community_code: str | None = None
    address_id: str | None = None
    notes: tuple[PlacementNote, ...] = ()

    @property
    def reason(self) -> str | None:
        """The notes as one line for dead letters and ``grid.unlinked``; ``None`` if none."""
        return "; ".join(self.notes) or None

    @property
    def approximate(self) -> bool:
        """Whether the grid is only the crosswalk's primary grid of a larger area."""
        return self.method == "crosswalk"


def _placed(
    ref: ReferenceData,
    method: PlacementMethod,
    grid_code: str,
    notes: list[PlacementNote],
    address_id: str | None = None,
) -> Placement:
    community = ref.grids[grid_code].community_code
    return Placement(method, grid_code, community, address_id, tuple(notes))


def _match_address(ref: ReferenceData, text: str) -> tuple[str, str | None] | PlacementNote:
    """The grid (and building, if only one) that a free-text address names, or why none."""
    key = split_address(text, ref.address_prefixes)
    if not key.core:
        return PlacementNote.ADDRESS_TOO_VAGUE
    matches = ref.alias_index.get(key.core)
    if not matches:
        return PlacementNote.ADDRESS_NO_MATCH
    candidates = sorted(
        address_id
        for address_id in matches
        if all(
            _grid_in_area(ref, ref.addresses[address_id].grid_code, ref.prefix_areas[name])
            for name in key.named
        )
    )
    if not candidates:
        return PlacementNote.ADDRESS_OTHER_AREA
    grid_codes = {ref.addresses[address_id].grid_code for address_id in candidates}
    if len(grid_codes) > 1:
        return PlacementNote.ADDRESS_AMBIGUOUS
    return grid_codes.pop(), candidates[0] if len(candidates) == 1 else None


def _point_grid(ref: ReferenceData, lng: float | None, lat: float | None) -> str | PlacementNote:
    """The grid whose polygon holds the point (the lowest code if polygons overlap), or why none."""
    if lng is None or lat is None or not (math.isfinite(lng) and math.isfinite(lat)):
        return PlacementNote.COORDINATES_INVALID
    if not (-180 <= lng <= 180 and -90 <= lat <= 90):
        return PlacementNote.COORDINATES_INVALID
    inside = ref.grids_containing(lng, lat)
    return inside[0] if inside else PlacementNote.COORDINATES_OUTSIDE


def _grid_in_area(ref: ReferenceData, grid_code: str, area_codes: frozenset[str]) -> bool:
    grid = ref.grids[grid_code]
    return grid.county_code in area_codes or grid.street_code in area_codes


def _community_hint(
    ref: ReferenceData, address: str | None, area_system: str | None, area_code: str | None
) -> str | None:
    """The one community an unplaced record names, by civil community code or by name.

    A name inside a longer matched name (``新村`` in ``幸福新村``) does not count.
    """
    if area_system == "civil" and area_code in ref.communities:
        return area_code
    if not address:
        return None
    text = normalize_address(address)
    named = [name for name in ref.community_names if name in text]
    found = {
        ref.community_names[name]
        for name in named
        if not any(name != longer and name in longer for longer in named)
    }
    return found.pop() if len(found) == 1 else None


def place(
    ref: ReferenceData,
    *,
    address_id: str | None = None,
    address: str | None = None,
    lng: float | None = None,
    lat: float | None = None,
    area_system: str | None = None,
    area_code: str | None = None,
) -> Placement:
    """Places a record with the best evidence it carries (see the module docstring).

    Args:
        ref: the grid map version in force.
        address_id: standard-address id (``syrk.dzbm``).
        address: free-text address (``jzdz``, ``jtzz``, ``residenceAddress``, a ticket's
            ``address``, an incident's ``fadz``).
        lng: WGS-84 longitude, with ``lat``.
        lat: WGS-84 latitude, with ``lng``.
        area_system: ``"party"``, ``"police"`` or ``"civil"``, the system of ``area_code``.
        area_code: that system's area (``partyGridCode``, ``zrq``, ``sqdm``).

    Returns:
        The placement; ``method == "unplaced"`` with notes when no rule placed the record.
    """
    notes: list[PlacementNote] = []
    address_id = address_id.strip() if address_id else None
    if address_id:
        standard = ref.addresses.get(address_id)
        if standard is not None:
            return _placed(ref, "address_id", standard.grid_code, notes, address_id)
        notes.append(PlacementNote.UNKNOWN_ADDRESS_ID)
    if address and address.strip():
        match = _match_address(ref, address)
        if isinstance(match, PlacementNote):
            notes.append(match)
        else:
            return _placed(ref, "address_match", match[0], notes, match[1])
    if lng is not None or lat is not None:
        found = _point_grid(ref, lng, lat)
        if isinstance(found, PlacementNote):
            notes.append(found)
        else:
            return _placed(ref, "coordinates", found, notes)
    area_code = area_code.strip() if area_code else None
    if area_code:
        area = ref.crosswalk_area(area_system, area_code) if area_system else None
        if area is not None:
            return _placed(ref, "crosswalk", area.primary_grid, notes)
        notes.append(
            PlacementNote.AREA_UNKNOWN if area_system else PlacementNote.AREA_WITHOUT_SYSTEM
        )
    if not notes:
        notes.append(PlacementNote.NOTHING_GIVEN)
    community = _community_hint(ref, address, area_system, area_code)
    if community is not None:
        notes.append(PlacementNote.COMMUNITY_ONLY)
    return Placement("unplaced", community_code=community, notes=tuple(notes))


class Placer:
    """:func:`place` over one grid-map version, for records carrying their evidence as fields.

    Many records share their evidence (a building's residents, a responsibility zone's
    incidents), so results are cached; the cache is bounded and starts over when full,
    which costs only recomputation.
    """

    CACHE_LIMIT = 200_000

    def __init__(self, ref: ReferenceData) -> None:
        self.ref = ref
        self._cache: dict[tuple[object, ...], Placement] = {}

    def __call__(self, evidence: Mapping[str, Any]) -> Placement:
        """Placement of a PersonEvent (or contribution) by its address evidence fields."""
        args = (
            evidence.get("address_id"),
            evidence.get("address"),
            evidence.get("lng"),
            evidence.get("lat"),
            evidence.get("area_system"),
            evidence.get("area_code"),
        )
        found = self._cache.get(args)
        if found is None:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            found = place(
                self.ref,
                address_id=evidence.get("address_id"),
                address=evidence.get("address"),
                lng=evidence.get("lng"),
                lat=evidence.get("lat"),
                area_system=evidence.get("area_system"),
                area_code=evidence.get("area_code"),
            )
            self._cache[args] = found
        return found


def placed(evidence: Mapping[str, Any]) -> Placement | None:
    """The placement a normalised record already carries, or None if it was not placed."""
    method = evidence.get("placement")
    if method is None:
        return None
    return Placement(method, evidence.get("grid_code"), evidence.get("community_code"))
