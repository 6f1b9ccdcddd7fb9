"""Loading and validating the grid map folder (reference-data.md)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from gridhub.reference import (
    ADDRESSES_FILE,
    CROSSWALK_FILE,
    GRIDS_FILE,
    ReferenceData,
    ReferenceDataError,
    load_reference,
    parse_polygon_wkt,
)

FIXTURE = Path(__file__).resolve().parent.parent / "cases" / "reference"


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return load_reference(FIXTURE)


def copy_fixture(tmp_path: Path) -> Path:
    folder = tmp_path / "reference"
    shutil.copytree(FIXTURE, folder)
    return folder


def edit(folder: Path, name: str, old: str, new: str) -> None:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture {name} lacks {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_grids_carry_their_hierarchy_and_polygon(ref: ReferenceData) -> None:
    assert len(ref.grids) == 7
    grid = ref.grids["320723100001001"]
    assert (grid.name, grid.community_code, grid.community_name) == (
        "幸福社区第一网格",
        "320723100001",
        "幸福社区",
    )
    assert (grid.street_code, grid.street_name, grid.county_code, grid.county_name) == (
        "320723100",
        "伊山镇",
        "320723",
        "灌云县",
    )
    assert grid.polygon == (
        (119.240, 34.280),
        (119.245, 34.280),
        (119.245, 34.285),
        (119.240, 34.285),
        (119.240, 34.280),
    )
    assert grid.holes == ()
    assert len(ref.grids["320723100001003"].holes) == 1
    assert ref.grids["320723101201001"].polygon is None
    assert ref.communities["320723101201"] == "新华村"


def test_addresses_keep_their_aliases_and_coordinates(ref: ReferenceData) -> None:
    address = ref.addresses["A001"]
    assert address.grid_code == "320723100001003"
    assert address.standard_address == "灌云县伊山镇幸福路18号幸福家园3栋"
    assert address.aliases == ("幸福家园3号楼", "幸福路18号3幢", "幸福家园小区三栋")
    assert (address.lng, address.lat) == (119.242, 34.286)
    assert (ref.addresses["A003"].lng, ref.addresses["A003"].lat) == (None, None)


def test_alias_index_uses_the_placement_normaliser(ref: ReferenceData) -> None:
    assert ref.alias_index["幸福路18号幸福家园3栋"] == {"A001"}
    assert ref.alias_index["幸福家园小区3栋"] == {"A001"}
    assert ref.alias_index["幸福家园12栋"] == {"A006"}
    assert ref.alias_index["幸福家园3栋"] == {"A001", "A004"}


def test_prefixes_and_community_names_come_from_grids_csv(ref: ReferenceData) -> None:
    assert ref.address_prefixes == ("伊山镇", "杨集镇", "灌云县")
    assert ref.prefix_areas["伊山镇"] == {"320723100"}
    assert ref.prefix_areas["灌云县"] == {"320723"}
    assert dict(ref.community_names) == {
        "幸福社区": "320723100001",
        "东关社区": "320723100002",
        "新华村": "320723101201",
    }


def test_crosswalk_has_one_primary_and_every_overlap(ref: ReferenceData) -> None:
    area = ref.crosswalk_area("party", "DJ-320723100001-01")
    assert area is not None
    assert area.primary_grid == "320723100001001"
    assert area.grids == ("320723100001001", "320723100001002")
    civil = ref.crosswalk_area("civil", "320723100001")
    assert civil is not None
    assert civil.grids == ("320723100001003", "320723100001001", "320723100001002")
    assert ref.crosswalk_area("police", "DJ-320723100001-01") is None
    assert len(ref.crosswalk) == 5


@pytest.mark.parametrize(
    ("lng", "lat", "grids"),
    [
        (119.242, 34.282, ("320723100001001",)),
        (119.247, 34.282, ("320723100001002",)),
        (119.242, 34.288, ("320723100001003",)),
        (119.245, 34.288, ("320723100002002",)),
        (119.258, 34.288, ("320723100002001",)),
        (119.252, 34.288, ()),
        (119.305, 34.355, ("320723101201002",)),
        (119.280, 34.320, ()),
        (120.0, 30.0, ()),
    ],
)
def test_grids_containing_a_point(
    ref: ReferenceData, lng: float, lat: float, grids: tuple[str, ...]
) -> None:
    assert ref.grids_containing(lng, lat) == grids


def test_reference_data_is_immutable(ref: ReferenceData) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.fingerprint = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ref.grids["x"] = ref.grids["320723100001001"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.grids["320723100001001"].name = "x"  # type: ignore[misc]


def test_fingerprint_ignores_layout_and_sees_content(tmp_path: Path, ref: ReferenceData) -> None:
    folder = copy_fixture(tmp_path)
    assert load_reference(folder).fingerprint == ref.fingerprint
    crosswalk = folder / CROSSWALK_FILE
    header, *rows = crosswalk.read_text(encoding="utf-8").splitlines()
    crosswalk.write_text("\r\n".join([header, "", *reversed(rows)]) + "\r\n", encoding="utf-8")
    grids = folder / GRIDS_FILE
    grids.write_bytes(b"\xef\xbb\xbf" + grids.read_bytes())
    assert load_reference(folder).fingerprint == ref.fingerprint
    edit(folder, ADDRESSES_FILE, "A002,320723100001001", "A002,320723100001002")
    moved = load_reference(folder)
    assert moved.fingerprint != ref.fingerprint
    assert moved.addresses["A002"].grid_code == "320723100001002"


def test_a_lattice_of_three_hundred_grids_finds_every_cell(tmp_path: Path) -> None:
    lines = [
        "grid_code,grid_name,community_code,community_name,street_code,street_name,"
        "county_code,county_name,polygon_wkt"
    ]
    for row in range(15):
        for column in range(20):
            west, south = 119.0 + column * 0.01, 34.0 + row * 0.01
            ring = ", ".join(
                f"{lng:.2f} {lat:.2f}"
                for lng, lat in [
                    (west, south),
                    (west + 0.01, south),
                    (west + 0.01, south + 0.01),
                    (west, south + 0.01),
                    (west, south),
                ]
            )
            community = f"320723100{row:03d}"
            lines.append(
                f"{community}{column:03d},网格{row}-{column},{community},社区{row},"
                f'320723100,伊山镇,320723,灌云县,"POLYGON(({ring}))"'
            )
    (tmp_path / GRIDS_FILE).write_text("\n".join(lines), encoding="utf-8")
    (tmp_path / ADDRESSES_FILE).write_text(
        "address_id,grid_code,standard_address,aliases,lng,lat\n", encoding="utf-8"
    )
    (tmp_path / CROSSWALK_FILE).write_text(
        "system,system_area_code,grid_code,is_primary\n", encoding="utf-8"
    )
    lattice = load_reference(tmp_path)
    assert len(lattice.grids) == 300
    for row in range(15):
        for column in range(20):
            for du, dv in ((0.002, 0.003), (0.0075, 0.0051), (0.0049, 0.0098)):
                found = lattice.grids_containing(119.0 + column * 0.01 + du, 34.0 + row * 0.01 + dv)
                assert found == (f"320723100{row:03d}{column:03d}",)


def test_polygon_wkt_parsing() -> None:
    assert parse_polygon_wkt("") is None
    assert parse_polygon_wkt("  ") is None
    assert parse_polygon_wkt("POLYGON EMPTY") is None
    outer, holes = parse_polygon_wkt("polygon ((0 0, 4 0, 4 4, 0 0))") or ((), ())
    assert outer == ((0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 0.0))
    assert holes == ()
    parsed = parse_polygon_wkt("POLYGON((0 0,9 0,9 9,0 9,0 0),(1 1,2 1,2 2,1 1),(5 5,6 5,6 6))")
    assert parsed is not None
    assert len(parsed[1]) == 2


@pytest.mark.parametrize(
    ("wkt", "message"),
    [
        ("POINT(1 2)", "expected POLYGON"),
        ("MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)))", "expected POLYGON"),
        ("POLYGON((0 0, 1 0, 1 1, 0 0)", "balanced"),
        ("POLYGON(0 0, 1 0, 1 1, 0 0)", "balanced"),
        ("POLYGON((0 0, 1 0, 0 0))", "3 distinct points"),
        ("POLYGON((0 0, 1, 1 1, 0 0))", "'lng lat' pairs"),
        ("POLYGON((0 0, a 0, 1 1, 0 0))", "not a number"),
        ("POLYGON((0 0, 181 0, 1 1, 0 0))", "longitude"),
        ("POLYGON((0 0, nan 0, 1 1, 0 0))", "longitude"),
        ("POLYGON((0 0, 1 91, 1 1, 0 0))", "latitude"),
    ],
)
def test_bad_polygons_are_refused(wkt: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_polygon_wkt(wkt)


GRID1 = "320723100001001,幸福社区第一网格,320723100001,幸福社区,320723100,伊山镇,320723,灌云县,"


@pytest.mark.parametrize(
    ("name", "old", "new", "line", "column", "message"),
    [
        (GRIDS_FILE, "grid_code,grid_name", "code,grid_name", 1, "grid_code", "lacks"),
        (GRIDS_FILE, "polygon_wkt", "polygon_wkt,grid_name", 1, "grid_name", "twice"),
        (GRIDS_FILE, "320723100001001,", "32072310000101,", 2, "grid_code", "15 digits"),
        (GRIDS_FILE, "320723100001002,", "320723100001001,", 3, "grid_code", "listed twice"),
        (GRIDS_FILE, "320723100001002,", "320723100009002,", 3, "grid_code", "does not lie in"),
        (GRIDS_FILE, "幸福社区第一网格,", ",", 2, "grid_name", "must not be empty"),
        (GRIDS_FILE, '"POLYGON((119.240', '"POLYGON((119,240', 2, "polygon_wkt", "pairs"),
        (GRIDS_FILE, "320723101,杨集镇", "320724101,杨集镇", 7, "community_code", "does not"),
        (
            GRIDS_FILE,
            "杨集镇,320723,灌云县,\n",
            "杨集镇,320724,灌云县,\n",
            7,
            "street_code",
            "does not",
        ),
        (ADDRESSES_FILE, "A002,320723100001001", "A002,320723100009001", 3, "grid_code", "not in"),
        (ADDRESSES_FILE, "A002,", "A001,", 3, "address_id", "listed twice"),
        (ADDRESSES_FILE, "119.242000,34.282000", "119.242000,", 3, "lat", "both lng and lat"),
        (ADDRESSES_FILE, "119.242000,34.282000", "east,34.282000", 3, "lng", "not a number"),
        (ADDRESSES_FILE, "119.242000,34.282000", "219.2,34.282000", 3, "lng", "out of range"),
        (
            ADDRESSES_FILE,
            "灌云县伊山镇幸福路20号,",
            "灌云县伊山镇,",
            6,
            "standard_address",
            "names no",
        ),
        (ADDRESSES_FILE, "幸福路二十号", "伊山镇二单元", 6, "aliases", "names no place"),
        (ADDRESSES_FILE, "东关路5号,,", "东关路5号,", 4, None, "expected 6 fields, found 5"),
        (CROSSWALK_FILE, "police,", "tax,", 5, "system", "must be one of"),
        (CROSSWALK_FILE, "320723100001001,1", "320723100009001,1", 2, "grid_code", "not in"),
        (CROSSWALK_FILE, "320723100001002,0", "320723100001001,0", 3, "grid_code", "twice"),
        (CROSSWALK_FILE, "320723100001002,0", "320723100001002,yes", 3, "is_primary", "1 or 0"),
        (CROSSWALK_FILE, "320723100001002,0", "320723100001002,1", 3, "is_primary", "second"),
        (CROSSWALK_FILE, "320723100002001,1", "320723100002001,0", 5, "is_primary", "no primary"),
    ],
)
def test_bad_files_name_file_line_and_column(
    tmp_path: Path,
    name: str,
    old: str,
    new: str,
    line: int,
    column: str | None,
    message: str,
) -> None:
    folder = copy_fixture(tmp_path)
    edit(folder, name, old, new)
    with pytest.raises(ReferenceDataError, match=message) as caught:
        load_reference(folder)
    error = caught.value
    assert (error.file, error.line, error.column) == (name, line, column)
    assert str(error).startswith(f"{name} line {line}")
    assert isinstance(error, ValueError)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    (folder / CROSSWALK_FILE).unlink()
    with pytest.raises(ReferenceDataError, match=r"^crosswalk\.csv: file not found") as caught:
        load_reference(folder)
    assert caught.value.line is None
    with pytest.raises(ReferenceDataError, match="reference folder not found"):
        load_reference(tmp_path / "nowhere")


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    text = (folder / ADDRESSES_FILE).read_text(encoding="utf-8")
    (folder / ADDRESSES_FILE).write_bytes(text.encode("gbk"))
    with pytest.raises(ReferenceDataError, match="not valid UTF-8") as caught:
        load_reference(folder)
    assert (caught.value.file, caught.value.line) == (ADDRESSES_FILE, 2)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    (folder / CROSSWALK_FILE).write_text("\n\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="no header row"):
        load_reference(folder)


def test_unterminated_quote_is_reported(tmp_path: Path) -> None:
    folder = copy_fixture(tmp_path)
    edit(folder, GRIDS_FILE, GRID1 + '"POLYGON', GRID1 + '"POLYGON"x')
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(folder)
    assert caught.value.file == GRIDS_FILE
    assert caught.value.line == 2
