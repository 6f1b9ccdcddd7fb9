"""The unified grid map (网格底图): grids, standard addresses and area-code crosswalks.

The county's grid-governance centre issues the map as a folder of UTF-8 CSV files
(``grids.csv``, ``addresses.csv``, ``crosswalk.csv``; spec: reference-data.md). The hub loads
it at start and again on ``gridhub reference reload``; :func:`load_reference` validates
everything up front so that a bad file is refused with its name, line and column instead of
misplacing residents later, and the result is immutable so that the stream stages can share
it while a reload builds the next one. Its :attr:`ReferenceData.fingerprint` tells a reload
whether anything changed at all.

Free-text addresses are indexed with :func:`gridhub.streams.normalize.split_address`, the
same normaliser that placement applies to a record's address, so an alias and the text a
clerk typed meet in one form.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from gridhub.streams.normalize import normalize_address, split_address

__all__ = [
    "ADDRESSES_FILE",
    "CROSSWALK_FILE",
    "CROSSWALK_SYSTEMS",
    "GRIDS_FILE",
    "CrosswalkArea",
    "Grid",
    "Point",
    "ReferenceData",
    "ReferenceDataError",
    "Ring",
    "StandardAddress",
    "load_reference",
    "parse_polygon_wkt",
]

Point = tuple[float, float]
"""``(lng, lat)`` in WGS-84."""
Ring = tuple[Point, ...]

GRIDS_FILE = "grids.csv"
ADDRESSES_FILE = "addresses.csv"
CROSSWALK_FILE = "crosswalk.csv"
CROSSWALK_SYSTEMS = frozenset({"party", "police", "civil"})

_GRID_COLUMNS = (
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
_ADDRESS_COLUMNS = ("address_id", "grid_code", "standard_address", "aliases", "lng", "lat")
_CROSSWALK_COLUMNS = ("system", "system_area_code", "grid_code", "is_primary")
_ALIAS_SEPARATOR = re.compile(r"[;；]")
_WKT_POLYGON = re.compile(r"\s*POLYGON\s*(.*?)\s*", re.IGNORECASE | re.DOTALL)
_WKT_RINGS = re.compile(r"\(\s*\([^()]*\)(?:\s*,\s*\([^()]*\))*\s*\)", re.DOTALL)
_WKT_RING = re.compile(r"\(([^()]*)\)")


class ReferenceDataError(ValueError):
    """A reference file is missing or malformed.

    Attributes:
        file: the file's name (``grids.csv``) or the folder when the folder itself is missing.
        line: 1-based physical line in the file, when one line is at fault.
        column: the column at fault, when one is.
        problem: what is wrong, without the location.
    """

    def __init__(
        self, file: str, problem: str, *, line: int | None = None, column: str | None = None
    ) -> None:
        self.file, self.line, self.column, self.problem = file, line, column, problem
        where = file
        if line is not None:
            where += f" line {line}"
        if column is not None:
            where += f" column {column}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Grid:
    """One comprehensive grid (综合网格) with its community, street and county."""

    code: str
    name: str
    community_code: str
    community_name: str
    street_code: str
    street_name: str
    county_code: str
    county_name: str
    polygon: Ring | None
    """Outer boundary as ``(lng, lat)`` points, or ``None`` when the map has no shape."""
    holes: tuple[Ring, ...] = ()
    """Inner boundaries (enclaves belonging to other grids), if the WKT has any."""

    def contains(self, lng: float, lat: float) -> bool:
        """Whether the point lies inside the polygon and outside its holes (ray casting)."""
        if self.polygon is None or not _in_ring(lng, lat, self.polygon):
            return False
        return not any(_in_ring(lng, lat, hole) for hole in self.holes)


@dataclass(frozen=True, slots=True)
class StandardAddress:
    """One standard address (标准地址): a building, the grid it belongs to, its aliases."""

    address_id: str
    grid_code: str
    standard_address: str
    aliases: tuple[str, ...]
    lng: float | None
    lat: float | None


@dataclass(frozen=True, slots=True)
class CrosswalkArea:
    """A department's area (党建网格, 警务责任区, 民政社区) and the unified grids it overlaps."""

    system: str
    area_code: str
    primary_grid: str
    """The grid that covers most of the area: the coarse placement for the whole area."""
    grids: tuple[str, ...]
    """Every overlapping grid, the primary first."""


def _in_ring(lng: float, lat: float, ring: Ring) -> bool:
    """Even-odd ray casting; works whether or not the ring repeats its first point."""
    inside = False
    previous_lng, previous_lat = ring[-1]
    for point_lng, point_lat in ring:
        if (point_lat > lat) != (previous_lat > lat):
            crossing = point_lng + (previous_lng - point_lng) * (lat - point_lat) / (
                previous_lat - point_lat
            )
            if lng < crossing:
                inside = not inside
        previous_lng, previous_lat = point_lng, point_lat
    return inside


def _parse_ring(text: str) -> Ring:
    points: list[Point] = []
    for pair in text.split(","):
        parts = pair.split()
        if len(parts) != 2:
            raise ValueError(f"expected 'lng lat' pairs, got {pair.strip()!r}")
        try:
            lng, lat = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"not a number in {pair.strip()!r}") from None
        if not (math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180):
            raise ValueError(f"longitude out of range in {pair.strip()!r}")
        if not -90 <= lat <= 90:
            raise ValueError(f"latitude out of range in {pair.strip()!r}")
        points.append((lng, lat))
    if len(set(points)) < 3:
        raise ValueError("a ring needs at least 3 distinct points")
    return tuple(points)


def parse_polygon_wkt(text: str) -> tuple[Ring, tuple[Ring, ...]] | None:
    """Parses ``POLYGON((lng lat, ...)[, (hole), ...])``; empty text means no polygon.

    Returns:
        ``(outer ring, holes)``, or ``None`` for an empty cell or ``POLYGON EMPTY``.

    Raises:
        ValueError: the text is not a WKT polygon with valid WGS-84 coordinates.
    """
    if not text.strip():
        return None
    match = _WKT_POLYGON.fullmatch(text)
    if match is None:
        raise ValueError("expected POLYGON((lng lat, ...))")
    body = match.group(1)
    if body.upper() == "EMPTY":
        return None
    if not _WKT_RINGS.fullmatch(body):
        raise ValueError("expected POLYGON((lng lat, ...)) with balanced parentheses")
    rings = [_parse_ring(ring) for ring in _WKT_RING.findall(body[1:-1])]
    return rings[0], tuple(rings[1:])


class _PolygonIndex:
    """Uniform cells over the map's extent, each listing the grids whose box touches it.

    A lookup checks only the few polygons of one cell instead of every grid, so placing
    many records on a few hundred grids stays cheap.
    """

    def __init__(self, grids: Iterable[Grid]) -> None:
        boxes: list[tuple[Grid, float, float, float, float]] = []
        for grid in grids:
            if grid.polygon is not None:
                lngs = [lng for lng, _ in grid.polygon]
                lats = [lat for _, lat in grid.polygon]
                boxes.append((grid, min(lngs), min(lats), max(lngs), max(lats)))
        self._cells: dict[tuple[int, int], list[tuple[Grid, float, float, float, float]]] = (
            defaultdict(list)
        )
        self._size = min(64, 2 * math.ceil(math.sqrt(len(boxes)))) or 1
        self._min_lng = min((box[1] for box in boxes), default=0.0)
        self._min_lat = min((box[2] for box in boxes), default=0.0)
        self._max_lng = max((box[3] for box in boxes), default=0.0)
        self._max_lat = max((box[4] for box in boxes), default=0.0)
        self._cell_lng = max((self._max_lng - self._min_lng) / self._size, 1e-12)
        self._cell_lat = max((self._max_lat - self._min_lat) / self._size, 1e-12)
        for box in boxes:
            for column in range(self._column(box[1]), self._column(box[3]) + 1):
                for row in range(self._row(box[2]), self._row(box[4]) + 1):
                    self._cells[(column, row)].append(box)

    def _column(self, lng: float) -> int:
        return min(self._size - 1, int((lng - self._min_lng) / self._cell_lng))

    def _row(self, lat: float) -> int:
        return min(self._size - 1, int((lat - self._min_lat) / self._cell_lat))

    def containing(self, lng: float, lat: float) -> tuple[str, ...]:
        if not (self._min_lng <= lng <= self._max_lng and self._min_lat <= lat <= self._max_lat):
            return ()
        return tuple(
            grid.code
            for grid, west, south, east, north in self._cells.get(
                (self._column(lng), self._row(lat)), ()
            )
            if west <= lng <= east and south <= lat <= north and grid.contains(lng, lat)
        )


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """One loaded version of the grid map; immutable, built by :func:`load_reference`.

    Attributes:
        grids: grid code -> grid.
        addresses: standard-address id (``syrk.dzbm``) -> standard address.
        crosswalk: ``(system, system_area_code)`` -> the grids that area overlaps.
        communities: community code -> community name.
        alias_index: normalised address (standard or alias, prefixes stripped) -> ids of
            the standard addresses it names; several ids when estates share a name.
        address_prefixes: normalised county and town names, longest first, for
            :func:`gridhub.streams.normalize.split_address`.
        prefix_areas: normalised county/town name -> the county or street codes it names.
        community_names: normalised community name -> code, for names used only once.
        fingerprint: SHA-256 over the parsed content; equal exactly when the data is.
    """

    grids: Mapping[str, Grid]
    addresses: Mapping[str, StandardAddress]
    crosswalk: Mapping[tuple[str, str], CrosswalkArea]
    communities: Mapping[str, str]
    alias_index: Mapping[str, frozenset[str]]
    address_prefixes: tuple[str, ...]
    prefix_areas: Mapping[str, frozenset[str]]
    community_names: Mapping[str, str]
    fingerprint: str
    _polygons: _PolygonIndex = field(repr=False)

    def grids_containing(self, lng: float, lat: float) -> tuple[str, ...]:
        """Codes of the grids whose polygon contains the point, in code order."""
        return self._polygons.containing(lng, lat)

    def crosswalk_area(self, system: str, area_code: str) -> CrosswalkArea | None:
        """The crosswalk entry of a department's area code, if the map has one."""
        return self.crosswalk.get((system, area_code))


class _Row:
    """One CSV record with its location, so every check can say where it failed."""

    def __init__(self, file: str, line: int, values: dict[str, str]) -> None:
        self.file, self.line, self._values = file, line, values

    def error(self, column: str, problem: str) -> ReferenceDataError:
        return ReferenceDataError(self.file, problem, line=self.line, column=column)

    def text(self, column: str, *, required: bool = True) -> str:
        value = self._values[column]
        if required and not value:
            raise self.error(column, "must not be empty")
        return value

    def digits(self, column: str, count: int) -> str:
        value = self.text(column)
        if len(value) != count or not value.isascii() or not value.isdigit():
            raise self.error(column, f"must be {count} digits, got {value!r}")
        return value

    def coordinate(self, column: str, low: float, high: float) -> float | None:
        value = self.text(column, required=False)
        if not value:
            return None
        try:
            number = float(value)
        except ValueError:
            raise self.error(column, f"not a number: {value!r}") from None
        if not (math.isfinite(number) and low <= number <= high):
            raise self.error(column, f"out of range {low}..{high}: {value!r}")
        return number


def _read_table(folder: Path, name: str, columns: tuple[str, ...]) -> list[_Row]:
    """Reads one UTF-8 CSV file (a BOM is tolerated) whose header names ``columns``."""
    try:
        data = (folder / name).read_bytes()
    except FileNotFoundError:
        raise ReferenceDataError(name, f"file not found in {folder}") from None
    except OSError as exc:
        raise ReferenceDataError(name, f"cannot read: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReferenceDataError(name, "not valid UTF-8", line=line) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[_Row] = []
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                _check_header(name, reader.line_num, header, columns)
                continue
            if len(record) != len(header):
                problem = f"expected {len(header)} fields, found {len(record)}"
                raise ReferenceDataError(name, problem, line=reader.line_num)
            values = {key: cell.strip() for key, cell in zip(header, record, strict=True)}
            rows.append(_Row(name, reader.line_num, values))
    except csv.Error as exc:
        raise ReferenceDataError(name, f"malformed CSV: {exc}", line=reader.line_num) from None
    if header is None:
        raise ReferenceDataError(name, "empty file: no header row")
    return rows


def _check_header(name: str, line: int, header: list[str], columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in header:
            raise ReferenceDataError(name, "header lacks this column", line=line, column=column)
    for column in header:
        if header.count(column) > 1:
            raise ReferenceDataError(name, "column appears twice", line=line, column=column)


def _read_grids(folder: Path) -> dict[str, Grid]:
    grids: dict[str, Grid] = {}
    for row in _read_table(folder, GRIDS_FILE, _GRID_COLUMNS):
        code = row.digits("grid_code", 15)
        if code in grids:
            raise row.error("grid_code", f"grid {code} is listed twice")
        community, street, county = (
            row.digits("community_code", 12),
            row.digits("street_code", 9),
            row.digits("county_code", 6),
        )
        for column, outer, inner in (
            ("grid_code", community, code),
            ("community_code", street, community),
            ("street_code", county, street),
        ):
            if not inner.startswith(outer):
                raise row.error(column, f"{inner} does not lie in {outer}")
        try:
            shape = parse_polygon_wkt(row.text("polygon_wkt", required=False))
        except ValueError as exc:
            raise row.error("polygon_wkt", str(exc)) from None
        grids[code] = Grid(
            code=code,
            name=row.text("grid_name"),
            community_code=community,
            community_name=row.text("community_name"),
            street_code=street,
            street_name=row.text("street_name"),
            county_code=county,
            county_name=row.text("county_name"),
            polygon=shape[0] if shape else None,
            holes=shape[1] if shape else (),
        )
    return grids


def _prefix_areas(grids: Iterable[Grid]) -> dict[str, frozenset[str]]:
    areas: dict[str, set[str]] = defaultdict(set)
    for grid in grids:
        for name, code in (
            (grid.county_name, grid.county_code),
            (grid.street_name, grid.street_code),
        ):
            normalised = normalize_address(name)
            if normalised:
                areas[normalised].add(code)
    return {name: frozenset(codes) for name, codes in areas.items()}


def _read_addresses(
    folder: Path, grids: Mapping[str, Grid], prefixes: tuple[str, ...]
) -> tuple[dict[str, StandardAddress], dict[str, frozenset[str]]]:
    addresses: dict[str, StandardAddress] = {}
    index: dict[str, set[str]] = defaultdict(set)
    for row in _read_table(folder, ADDRESSES_FILE, _ADDRESS_COLUMNS):
        address_id = row.text("address_id")
        if address_id in addresses:
            raise row.error("address_id", f"address {address_id} is listed twice")
        grid_code = row.text("grid_code")
        if grid_code not in grids:
            raise row.error("grid_code", f"grid {grid_code} is not in {GRIDS_FILE}")
        lng, lat = row.coordinate("lng", -180, 180), row.coordinate("lat", -90, 90)
        if (lng is None) != (lat is None):
            raise row.error("lng" if lng is None else "lat", "give both lng and lat, or neither")
        standard = row.text("standard_address")
        aliases = tuple(
            alias.strip()
            for alias in _ALIAS_SEPARATOR.split(row.text("aliases", required=False))
            if alias.strip()
        )
        for column, text in [("standard_address", standard)] + [("aliases", a) for a in aliases]:
            key = split_address(text, prefixes).core
            if not key:
                raise row.error(column, f"{text!r} names no place below the town")
            index[key].add(address_id)
        addresses[address_id] = StandardAddress(address_id, grid_code, standard, aliases, lng, lat)
    return addresses, {key: frozenset(ids) for key, ids in index.items()}


def _read_crosswalk(
    folder: Path, grids: Mapping[str, Grid]
) -> dict[tuple[str, str], CrosswalkArea]:
    overlaps: dict[tuple[str, str], list[str]] = defaultdict(list)
    primaries: dict[tuple[str, str], str] = {}
    first_lines: dict[tuple[str, str], int] = {}
    for row in _read_table(folder, CROSSWALK_FILE, _CROSSWALK_COLUMNS):
        system = row.text("system")
        if system not in CROSSWALK_SYSTEMS:
            raise row.error("system", f"must be one of {sorted(CROSSWALK_SYSTEMS)}, got {system!r}")
        key = (system, row.text("system_area_code"))
        grid_code = row.text("grid_code")
        if grid_code not in grids:
            raise row.error("grid_code", f"grid {grid_code} is not in {GRIDS_FILE}")
        if grid_code in overlaps[key]:
            raise row.error("grid_code", f"{key[0]} area {key[1]} lists grid {grid_code} twice")
        primary = row.text("is_primary")
        if primary not in ("0", "1"):
            raise row.error("is_primary", f"must be 1 or 0, got {primary!r}")
        if primary == "1":
            if key in primaries:
                raise row.error("is_primary", f"{key[0]} area {key[1]} has a second primary grid")
            primaries[key] = grid_code
        overlaps[key].append(grid_code)
        first_lines.setdefault(key, row.line)
    areas: dict[tuple[str, str], CrosswalkArea] = {}
    for key, codes in overlaps.items():
        if key not in primaries:
            problem = f"{key[0]} area {key[1]} has no primary grid (is_primary = 1)"
            raise ReferenceDataError(
                CROSSWALK_FILE, problem, line=first_lines[key], column="is_primary"
            )
        primary_grid = primaries[key]
        others = tuple(sorted(code for code in codes if code != primary_grid))
        areas[key] = CrosswalkArea(key[0], key[1], primary_grid, (primary_grid, *others))
    return areas


def _unique_community_names(grids: Iterable[Grid]) -> dict[str, str]:
    codes: dict[str, set[str]] = defaultdict(set)
    for grid in grids:
        name = normalize_address(grid.community_name)
        if name:
            codes[name].add(grid.community_code)
    return {name: next(iter(found)) for name, found in codes.items() if len(found) == 1}


def _fingerprint(
    grids: Mapping[str, Grid],
    addresses: Mapping[str, StandardAddress],
    crosswalk: Mapping[tuple[str, str], CrosswalkArea],
) -> str:
    content = {
        "grids": [dataclasses.asdict(grids[code]) for code in sorted(grids)],
        "addresses": [dataclasses.asdict(addresses[key]) for key in sorted(addresses)],
        "crosswalk": [dataclasses.asdict(crosswalk[key]) for key in sorted(crosswalk)],
    }
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_reference(folder: Path) -> ReferenceData:
    """Loads and validates a reference folder: ``grids.csv``, ``addresses.csv``, ``crosswalk.csv``.

    Codes must nest (grid in community in street in county), every address and crosswalk
    row must name a grid of ``grids.csv``, and every crosswalk area must have exactly one
    primary grid.

    Raises:
        ReferenceDataError: a file is missing, not UTF-8 CSV, or a value breaks the spec;
            the message names the file, line and column.
    """
    if not folder.is_dir():
        raise ReferenceDataError(str(folder), "reference folder not found")
    grids = _read_grids(folder)
    prefix_areas = _prefix_areas(grids.values())
    prefixes = tuple(sorted(prefix_areas, key=lambda name: (-len(name), name)))
    addresses, alias_index = _read_addresses(folder, grids, prefixes)
    crosswalk = _read_crosswalk(folder, grids)
    ordered = [grids[code] for code in sorted(grids)]
    return ReferenceData(
        grids=MappingProxyType(grids),
        addresses=MappingProxyType(addresses),
        crosswalk=MappingProxyType(crosswalk),
        communities=MappingProxyType(
            {grid.community_code: grid.community_name for grid in ordered}
        ),
        alias_index=MappingProxyType(alias_index),
        address_prefixes=prefixes,
        prefix_areas=MappingProxyType(prefix_areas),
        community_names=MappingProxyType(_unique_community_names(ordered)),
        fingerprint=_fingerprint(grids, addresses, crosswalk),
        _polygons=_PolygonIndex(ordered),
    )
