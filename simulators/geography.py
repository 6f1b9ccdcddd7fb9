"""The county's map: streets, communities, grids, buildings and crosswalks.

Builds the reference data of ``spec/reference-data.md`` for a synthetic
county and writes it as the three UTF-8 CSV files the hub loads. Grids are
plain rectangles on a lattice around 119.2E 34.3N so that "is this point
inside that grid" has one obvious answer.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from gridhub.simulators.addressing import alias_texts, building_text, chinese_number
from gridhub.simulators.names import (
    ESTATE_SUFFIXES,
    PLACE_PREFIXES,
    ROAD_SUFFIXES,
    TOWNS,
    unique_names,
)

CENTRE = (119.2, 34.3)
CELL = (0.006, 0.005)  # degrees of longitude, latitude per grid cell
GAP = 0.0002  # keeps neighbouring rectangles apart

GRID_COLUMNS = (
    "grid_code",
    "grid_name",
    "community_code",
    "community_name",
    "street_code",
    "street_name",
    "county_code",
    "county_name",
    "polygon_wkt",
)
ADDRESS_COLUMNS = ("address_id", "grid_code", "standard_address", "aliases", "lng", "lat")
CROSSWALK_COLUMNS = ("system", "system_area_code", "grid_code", "is_primary")


@dataclass(frozen=True)
class Street:
    """A street or town (街道/乡镇), 9-digit code."""

    code: str
    name: str


@dataclass(frozen=True)
class Community:
    """A community or village (社区/村), 12-digit code."""

    code: str
    name: str
    street_code: str


@dataclass(frozen=True)
class Grid:
    """A unified grid (综合网格); ``bounds`` is (west, south, east, north)."""

    code: str
    name: str
    community_code: str
    bounds: tuple[float, float, float, float]
    has_polygon: bool

    @property
    def polygon_wkt(self) -> str:
        """The rectangle as WKT, or ``""`` for a grid issued without a polygon."""
        if not self.has_polygon:
            return ""
        w, s, e, n = self.bounds
        ring = [(w, s), (e, s), (e, n), (w, n), (w, s)]
        return "POLYGON((" + ", ".join(f"{x:.6f} {y:.6f}" for x, y in ring) + "))"

    def point_inside(self, rng: random.Random) -> tuple[float, float]:
        """A random point well inside the rectangle, rounded to 6 decimals."""
        w, s, e, n = self.bounds
        lng = w + (0.1 + 0.8 * rng.random()) * (e - w)
        lat = s + (0.1 + 0.8 * rng.random()) * (n - s)
        return round(lng, 6), round(lat, 6)


@dataclass(frozen=True)
class Building:
    """A standard address: one building of an estate on a road."""

    address_id: str
    grid_code: str
    county_name: str
    town_name: str
    road: str
    number: int
    estate: str
    building_no: int
    lng: float
    lat: float

    @property
    def standard_address(self) -> str:
        """E.g. ``灌云县伊山镇幸福路18号幸福家园3栋``."""
        text: str = building_text(self)
        return text

    @property
    def aliases(self) -> tuple[str, ...]:
        """The names listed in addresses.csv's ``aliases`` column."""
        names: tuple[str, ...] = alias_texts(self)
        return names


@dataclass(frozen=True)
class CrosswalkEntry:
    """One row of crosswalk.csv: a department area overlapping a grid."""

    system: str
    area_code: str
    grid_code: str
    is_primary: bool


@dataclass(frozen=True)
class Geography:
    """The whole map plus the planned number of residents per building."""

    county_code: str
    county_name: str
    streets: tuple[Street, ...]
    communities: tuple[Community, ...]
    grids: tuple[Grid, ...]
    buildings: tuple[Building, ...]
    crosswalk: tuple[CrosswalkEntry, ...]
    occupants: dict[str, int] = field(repr=False)
    owner_zone: dict[str, str] = field(repr=False)
    owner_party_area: dict[str, str] = field(repr=False)
    unknown_zone: str

    @cached_property
    def grid_by_code(self) -> dict[str, Grid]:
        """Grids by 15-digit code."""
        return {g.code: g for g in self.grids}

    @cached_property
    def community_by_code(self) -> dict[str, Community]:
        """Communities by 12-digit code."""
        return {c.code: c for c in self.communities}

    @cached_property
    def street_by_code(self) -> dict[str, Street]:
        """Streets by 9-digit code."""
        return {s.code: s for s in self.streets}

    @cached_property
    def building_by_id(self) -> dict[str, Building]:
        """Buildings by ``address_id``."""
        return {b.address_id: b for b in self.buildings}

    @cached_property
    def grids_of_community(self) -> dict[str, list[Grid]]:
        """Grids of each community, in code order."""
        grouped: dict[str, list[Grid]] = {c.code: [] for c in self.communities}
        for g in self.grids:
            grouped[g.community_code].append(g)
        return grouped

    @cached_property
    def primary_grid(self) -> dict[tuple[str, str], str]:
        """``(system, area code)`` -> the grid that covers most of the area."""
        return {(e.system, e.area_code): e.grid_code for e in self.crosswalk if e.is_primary}

    def write_reference(self, directory: Path) -> None:
        """Writes grids.csv, addresses.csv and crosswalk.csv into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        _write_csv(directory / "grids.csv", GRID_COLUMNS, self._grid_rows())
        _write_csv(directory / "addresses.csv", ADDRESS_COLUMNS, self._address_rows())
        _write_csv(directory / "crosswalk.csv", CROSSWALK_COLUMNS, self._crosswalk_rows())

    def _grid_rows(self) -> Iterator[Sequence[str]]:
        for g in self.grids:
            c = self.community_by_code[g.community_code]
            s = self.street_by_code[c.street_code]
            yield (
                g.code,
                g.name,
                c.code,
                c.name,
                s.code,
                s.name,
                self.county_code,
                self.county_name,
                g.polygon_wkt,
            )

    def _address_rows(self) -> Iterator[Sequence[str]]:
        for b in self.buildings:
            yield (
                b.address_id,
                b.grid_code,
                b.standard_address,
                ";".join(b.aliases),
                f"{b.lng:.6f}",
                f"{b.lat:.6f}",
            )

    def _crosswalk_rows(self) -> Iterator[Sequence[str]]:
        for e in self.crosswalk:
            yield (e.system, e.area_code, e.grid_code, "1" if e.is_primary else "0")


def _write_csv(path: Path, header: Sequence[str], rows: Iterator[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _split(rng: random.Random, total: int, low: int, high: int) -> list[int]:
    """Splits ``total`` into parts of ``low..high`` (the last part may be larger)."""
    parts: list[int] = []
    remaining = total
    while remaining > 0:
        part = remaining if remaining <= high else rng.randint(low, min(high, remaining - low))
        parts.append(part)
        remaining -= part
    return parts


def _chunks(rng: random.Random, items: Sequence[str], low: int, high: int) -> list[list[str]]:
    chunks: list[list[str]] = []
    i = 0
    while i < len(items):
        size = rng.randint(low, high)
        chunks.append(list(items[i : i + size]))
        i += size
    return chunks


def build_geography(
    rng: random.Random, residents: int, county_code: str, county_name: str
) -> Geography:
    """Plans a map for ``residents`` people (150-300 per grid, 20-60 per building)."""
    grid_sizes = _split(rng, residents, 150, 300) if residents > 300 else [residents]
    community_sizes = _split(rng, len(grid_sizes), 2, 6)
    street_sizes = _split(rng, len(community_sizes), 3, 8)

    town_names = list(TOWNS)
    rng.shuffle(town_names)
    if len(street_sizes) > len(town_names):
        town_names += unique_names(rng, PLACE_PREFIXES, ("镇",), len(street_sizes))
        town_names = list(dict.fromkeys(town_names))
    community_names = unique_names(rng, PLACE_PREFIXES, ("社区",), len(community_sizes))
    community_names = [
        n.replace("社区", "村") if rng.random() < 0.2 else n for n in community_names
    ]
    road_pool = iter(unique_names(rng, PLACE_PREFIXES, ROAD_SUFFIXES, 3 * len(community_sizes)))
    estate_pool = iter(unique_names(rng, PLACE_PREFIXES, ESTATE_SUFFIXES, 2 * len(grid_sizes)))

    streets: list[Street] = []
    communities: list[Community] = []
    grids: list[Grid] = []
    grid_size: dict[str, int] = {}
    street_grids: dict[str, list[str]] = {}
    community_grids: dict[str, list[str]] = {}
    town_of_grid: dict[str, str] = {}
    roads_of_grid: dict[str, list[str]] = {}

    columns = math.ceil(math.sqrt(len(grid_sizes)))
    rows = math.ceil(len(grid_sizes) / columns)
    west0 = CENTRE[0] - columns * CELL[0] / 2
    south0 = CENTRE[1] - rows * CELL[1] / 2
    sizes = iter(grid_sizes)
    communities_left = iter(community_sizes)
    for s_index, n_communities in enumerate(street_sizes):
        street = Street(f"{county_code}{100 + s_index:03d}", town_names[s_index])
        streets.append(street)
        street_grids[street.code] = []
        for c_index in range(n_communities):
            name = community_names[len(communities)]
            community = Community(f"{street.code}{c_index + 1:03d}", name, street.code)
            communities.append(community)
            community_grids[community.code] = []
            roads = [next(road_pool) for _ in range(rng.randint(2, 3))]
            for g_index in range(next(communities_left)):
                cell = len(grids)
                row, col = divmod(cell, columns)
                west = west0 + col * CELL[0] + GAP
                south = south0 + row * CELL[1] + GAP
                bounds = (
                    round(west, 6),
                    round(south, 6),
                    round(west + CELL[0] - 2 * GAP, 6),
                    round(south + CELL[1] - 2 * GAP, 6),
                )
                grid = Grid(
                    code=f"{community.code}{g_index + 1:03d}",
                    name=f"{name}第{chinese_number(g_index + 1)}网格",
                    community_code=community.code,
                    bounds=bounds,
                    has_polygon=True,
                )
                grids.append(grid)
                grid_size[grid.code] = next(sizes)
                street_grids[street.code].append(grid.code)
                community_grids[community.code].append(grid.code)
                town_of_grid[grid.code] = street.name
                roads_of_grid[grid.code] = roads

    if len(grids) >= 4:
        for index in rng.sample(range(len(grids)), max(1, round(0.03 * len(grids)))):
            g = grids[index]
            grids[index] = Grid(g.code, g.name, g.community_code, g.bounds, has_polygon=False)

    buildings, occupants = _plan_buildings(
        rng, county_code, county_name, grids, grid_size, town_of_grid, roads_of_grid, estate_pool
    )
    crosswalk, owner_zone, owner_party_area = _plan_crosswalk(
        rng, county_code, streets, communities, street_grids, community_grids, grid_size
    )
    return Geography(
        county_code=county_code,
        county_name=county_name,
        streets=tuple(streets),
        communities=tuple(communities),
        grids=tuple(grids),
        buildings=tuple(buildings),
        crosswalk=tuple(crosswalk),
        occupants=occupants,
        owner_zone=owner_zone,
        owner_party_area=owner_party_area,
        unknown_zone=f"{county_code}519900-99",
    )


def _plan_buildings(
    rng: random.Random,
    county_code: str,
    county_name: str,
    grids: Sequence[Grid],
    grid_size: dict[str, int],
    town_of_grid: dict[str, str],
    roads_of_grid: dict[str, list[str]],
    estate_pool: Iterator[str],
) -> tuple[list[Building], dict[str, int]]:
    """Estates of 20-60-resident buildings inside each grid's rectangle."""
    buildings: list[Building] = []
    occupants: dict[str, int] = {}
    next_number: dict[str, int] = {}
    for grid in grids:
        capacities = _split(rng, grid_size[grid.code], 20, 60)
        n_estates = 1 if len(capacities) <= 4 or rng.random() < 0.5 else 2
        cut = len(capacities) if n_estates == 1 else rng.randint(1, len(capacities) - 1)
        for part in (capacities[:cut], capacities[cut:]):
            if not part:
                continue
            estate = next(estate_pool)
            road = rng.choice(roads_of_grid[grid.code])
            number = next_number.get(road, rng.randint(1, 30))
            next_number[road] = number + 2 * rng.randint(1, 8)
            for b_index, capacity in enumerate(part):
                lng, lat = grid.point_inside(rng)
                building = Building(
                    address_id=f"DZ{county_code}{len(buildings) + 1:08d}",
                    grid_code=grid.code,
                    county_name=county_name,
                    town_name=town_of_grid[grid.code],
                    road=road,
                    number=number,
                    estate=estate,
                    building_no=b_index + 1,
                    lng=lng,
                    lat=lat,
                )
                buildings.append(building)
                occupants[building.address_id] = capacity
    return buildings, occupants


def _areas(
    rng: random.Random, grids: Sequence[str], grid_size: dict[str, int], low: int, high: int
) -> list[tuple[list[str], list[str], str]]:
    """Department areas over a run of grids: (owned chunk, overlapped grids, primary).

    Each area owns a chunk of consecutive grids and sometimes spills into
    the next chunk's first grid, so areas do not nest in grids.
    """
    chunks = _chunks(rng, grids, low, high)
    areas: list[tuple[list[str], list[str], str]] = []
    for index, chunk in enumerate(chunks):
        primary = max(chunk, key=lambda code: grid_size[code])
        overlap = list(chunk)
        if len(chunk) < 3 and index + 1 < len(chunks) and rng.random() < 0.4:
            overlap.append(chunks[index + 1][0])
        areas.append((chunk, overlap, primary))
    return areas


def _plan_crosswalk(
    rng: random.Random,
    county_code: str,
    streets: Sequence[Street],
    communities: Sequence[Community],
    street_grids: dict[str, list[str]],
    community_grids: dict[str, list[str]],
    grid_size: dict[str, int],
) -> tuple[list[CrosswalkEntry], dict[str, str], dict[str, str]]:
    """Police zones per street, party grids per community, civil communities."""
    entries: list[CrosswalkEntry] = []
    owner_zone: dict[str, str] = {}
    owner_party_area: dict[str, str] = {}

    def add(
        system: str, code: str, area: tuple[list[str], list[str], str], owner: dict[str, str]
    ) -> None:
        chunk, overlap, primary = area
        for grid_code in overlap:
            entries.append(CrosswalkEntry(system, code, grid_code, grid_code == primary))
        for grid_code in chunk:
            owner[grid_code] = code

    for s_index, street in enumerate(streets):
        station = f"{county_code}51{s_index:02d}00"
        for z_index, area in enumerate(_areas(rng, street_grids[street.code], grid_size, 1, 3)):
            add("police", f"{station}-{z_index + 1:02d}", area, owner_zone)
    for community in communities:
        for p_index, area in enumerate(
            _areas(rng, community_grids[community.code], grid_size, 1, 2)
        ):
            add("party", f"DJ-{community.code}-{p_index + 1:02d}", area, owner_party_area)
    for community in communities:
        members = community_grids[community.code]
        primary = max(members, key=lambda code: grid_size[code])
        for grid_code in members:
            entries.append(CrosswalkEntry("civil", community.code, grid_code, grid_code == primary))
    return entries, owner_zone, owner_party_area
