"""The placement chain of reference-data.md, best evidence first."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from gridhub.streams.placement import Placement, PlacementNote, normalize_address, place
from hypothesis import given
from hypothesis import strategies as st

from gridhub.reference import ReferenceData, load_reference

FIXTURE = Path(__file__).resolve().parent.parent / "cases" / "reference"
REF = load_reference(FIXTURE)
FULL_WIDTH = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ#",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ＃",
)
GRID_3 = "320723100001003"


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return REF


def test_address_id_comes_first(ref: ReferenceData) -> None:
    placement = place(
        ref,
        address_id=" A001 ",
        address="东关小区A座",
        lng=119.258,
        lat=34.288,
        area_system="police",
        area_code="320723510000-03",
    )
    assert placement == Placement("address_id", GRID_3, "320723100001", "A001", ())
    assert placement.reason is None
    assert not placement.approximate


def test_unknown_address_id_falls_through_and_says_so(ref: ReferenceData) -> None:
    placement = place(ref, address_id="X999", address="伊山镇幸福家园3号楼二单元")
    assert (placement.method, placement.grid_code, placement.address_id) == (
        "address_match",
        GRID_3,
        "A001",
    )
    assert placement.notes == (PlacementNote.UNKNOWN_ADDRESS_ID,)
    assert placement.reason == "地址编码不在标准地址库 (unknown standard-address id)"


@pytest.mark.parametrize(
    ("address", "grid_code", "address_id"),
    [
        ("灌云县伊山镇幸福路18号幸福家园3栋2单元302室", GRID_3, "A001"),
        ("伊山镇幸福家园3号楼二单元", GRID_3, "A001"),
        ("幸福路十八号三幢", GRID_3, "A001"),
        ("幸福家园小区3#楼3单元502", GRID_3, "A001"),
        ("杨集镇幸福家园三号楼", "320723101201001", "A004"),
        ("江苏省连云港市灌云县杨集镇新华路8号幸福家园3栋", "320723101201001", "A004"),
        ("东关小区ａ座", "320723100002001", "A003"),
        ("伊山镇东关路5号302室", "320723100002001", "A003"),
        ("幸福路20号", "320723100001002", "A005"),
        ("幸福家园十二号楼", "320723100002002", "A006"),
    ],
)
def test_free_text_matches_standard_addresses_and_aliases(
    ref: ReferenceData, address: str, grid_code: str, address_id: str
) -> None:
    placement = place(ref, address=address)
    assert (placement.method, placement.grid_code, placement.address_id) == (
        "address_match",
        grid_code,
        address_id,
    )
    assert placement.community_code == ref.grids[grid_code].community_code
    assert placement.notes == ()


@pytest.mark.parametrize(
    ("address", "note"),
    [
        ("幸福路18号附近", PlacementNote.ADDRESS_NO_MATCH),
        ("幸福家园3栋附近", PlacementNote.ADDRESS_NO_MATCH),
        ("幸福家园3号楼", PlacementNote.ADDRESS_AMBIGUOUS),
        ("灌云县幸福家园3号楼二单元", PlacementNote.ADDRESS_AMBIGUOUS),
        ("杨集镇东关小区A座", PlacementNote.ADDRESS_OTHER_AREA),
        ("灌云县伊山镇", PlacementNote.ADDRESS_TOO_VAGUE),
    ],
)
def test_vague_ambiguous_or_contradictory_text_does_not_place(
    ref: ReferenceData, address: str, note: PlacementNote
) -> None:
    placement = place(ref, address=address)
    assert (placement.method, placement.grid_code) == ("unplaced", None)
    assert placement.notes == (note,)


def test_coordinates_place_when_the_address_does_not(ref: ReferenceData) -> None:
    placement = place(ref, address="幸福路18号附近", lng=119.247, lat=34.282)
    assert (placement.method, placement.grid_code, placement.community_code) == (
        "coordinates",
        "320723100001002",
        "320723100001",
    )
    assert placement.notes == (PlacementNote.ADDRESS_NO_MATCH,)
    assert placement.address_id is None


def test_a_point_in_an_enclave_belongs_to_the_enclave(ref: ReferenceData) -> None:
    assert place(ref, lng=119.245, lat=34.288).grid_code == "320723100002002"
    assert place(ref, lng=119.241, lat=34.288).grid_code == GRID_3


def test_crosswalk_is_the_approximate_last_resort(ref: ReferenceData) -> None:
    placement = place(
        ref, lng=119.252, lat=34.288, area_system="police", area_code=" 320723510000-03 "
    )
    assert (placement.method, placement.grid_code, placement.community_code) == (
        "crosswalk",
        "320723100002001",
        "320723100002",
    )
    assert placement.approximate
    assert placement.notes == (PlacementNote.COORDINATES_OUTSIDE,)
    party = place(ref, area_system="party", area_code="DJ-320723100001-01")
    assert (party.method, party.grid_code) == ("crosswalk", "320723100001001")


@pytest.mark.parametrize(
    ("kwargs", "notes"),
    [
        ({}, (PlacementNote.NOTHING_GIVEN,)),
        ({"address_id": "  ", "address": " ", "area_code": ""}, (PlacementNote.NOTHING_GIVEN,)),
        ({"address_id": "X999"}, (PlacementNote.UNKNOWN_ADDRESS_ID,)),
        ({"lng": 119.242}, (PlacementNote.COORDINATES_INVALID,)),
        ({"lng": math.nan, "lat": 34.28}, (PlacementNote.COORDINATES_INVALID,)),
        ({"lng": 34.28, "lat": 119.242}, (PlacementNote.COORDINATES_INVALID,)),
        ({"lng": 0.0, "lat": 0.0}, (PlacementNote.COORDINATES_OUTSIDE,)),
        ({"area_code": "DJ-320723100001-01"}, (PlacementNote.AREA_WITHOUT_SYSTEM,)),
        (
            {"area_system": "police", "area_code": "DJ-320723100001-01"},
            (PlacementNote.AREA_UNKNOWN,),
        ),
        (
            {
                "address_id": "X999",
                "address": "幸福路18号附近",
                "lng": 119.280,
                "lat": 34.320,
                "area_system": "party",
                "area_code": "DJ-999",
            },
            (
                PlacementNote.UNKNOWN_ADDRESS_ID,
                PlacementNote.ADDRESS_NO_MATCH,
                PlacementNote.COORDINATES_OUTSIDE,
                PlacementNote.AREA_UNKNOWN,
            ),
        ),
    ],
)
def test_unplaced_records_say_what_was_tried(
    ref: ReferenceData, kwargs: dict[str, str | float], notes: tuple[PlacementNote, ...]
) -> None:
    placement = place(ref, **kwargs)  # type: ignore[arg-type]
    assert (placement.method, placement.grid_code, placement.community_code) == (
        "unplaced",
        None,
        None,
    )
    assert placement.notes == notes
    assert placement.reason == "; ".join(notes)


def test_unplaced_records_keep_the_community_they_name(ref: ReferenceData) -> None:
    by_name = place(ref, address="伊山镇幸福社区门口")
    assert (by_name.method, by_name.grid_code, by_name.community_code) == (
        "unplaced",
        None,
        "320723100001",
    )
    assert by_name.notes == (PlacementNote.ADDRESS_NO_MATCH, PlacementNote.COMMUNITY_ONLY)
    by_code = place(ref, address="东关路99号", area_system="civil", area_code="320723100002")
    assert by_code.community_code == "320723100002"
    assert by_code.notes[-1] == PlacementNote.COMMUNITY_ONLY
    assert place(ref, address="幸福社区和东关社区之间").community_code is None


def test_a_community_name_inside_a_longer_one_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "grids.csv").write_text(
        "grid_code,grid_name,community_code,community_name,street_code,street_name,"
        "county_code,county_name,polygon_wkt\n"
        "320723100001001,新村第一网格,320723100001,新村,320723100,伊山镇,320723,灌云县,\n"
        "320723100002001,幸福新村第一网格,320723100002,幸福新村,320723100,伊山镇,320723,灌云县,\n",
        encoding="utf-8",
    )
    (tmp_path / "addresses.csv").write_text(
        "address_id,grid_code,standard_address,aliases,lng,lat\n", encoding="utf-8"
    )
    (tmp_path / "crosswalk.csv").write_text(
        "system,system_area_code,grid_code,is_primary\n", encoding="utf-8"
    )
    villages = load_reference(tmp_path)
    assert place(villages, address="伊山镇幸福新村东头").community_code == "320723100002"
    assert place(villages, address="伊山镇新村东头").community_code == "320723100001"


def test_civil_community_in_the_crosswalk_places_on_its_primary_grid(ref: ReferenceData) -> None:
    placement = place(ref, area_system="civil", area_code="320723100001")
    assert (placement.method, placement.grid_code) == ("crosswalk", GRID_3)


TAILS = ["", "二单元", "302室", "3单元502", "2单元301室", "5楼502室"]
BUILDING_NAMES = [
    (address.address_id, address.grid_code, name)
    for address in REF.addresses.values()
    for name in (address.standard_address, *address.aliases)
]


def spell(text: str, wide: bool, spaced: bool) -> str:
    text = text.translate(FULL_WIDTH) if wide else text
    return " ".join(text) if spaced else text


@given(
    st.sampled_from(BUILDING_NAMES),
    st.sampled_from(TAILS),
    st.sampled_from(["", "江苏省连云港市", "连云港市"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_every_name_of_a_building_places_onto_its_grid(
    building: tuple[str, str, str],
    tail: str,
    above: str,
    with_county: bool,
    wide: bool,
    spaced: bool,
) -> None:
    address_id, grid_code, name = building
    grid = REF.grids[grid_code]
    prefix = above + (grid.county_name if with_county or above else "") + grid.street_name
    placed = place(REF, address=spell(prefix + name + tail, wide, spaced))
    assert (placed.method, placed.grid_code) == ("address_match", grid_code)
    assert placed.address_id == address_id


@given(st.sampled_from(BUILDING_NAMES), st.sampled_from(TAILS), st.booleans())
def test_a_bare_building_name_never_lands_on_a_wrong_grid(
    building: tuple[str, str, str], tail: str, wide: bool
) -> None:
    _, grid_code, name = building
    placed = place(REF, address=spell(name + tail, wide, spaced=False))
    if placed.method == "address_match":
        assert placed.grid_code == grid_code
    else:
        assert placed.notes == (PlacementNote.ADDRESS_AMBIGUOUS,)


def test_normalize_address_is_reexported_for_the_stages() -> None:
    assert normalize_address("伊山镇幸福家园3号楼二单元", REF.address_prefixes) == "幸福家园3栋"
