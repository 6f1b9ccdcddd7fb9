"""The synthetic county: determinism, reference files, source shapes, ground truth.

The address checks use a small normaliser written here from the words of
spec/reference-data.md, independent of both the hub and the generator, so a
variant the generator calls "matching" is shown to match for real.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from gridhub.simulators import idcards
from gridhub.simulators.county import County, generate_county

TODAY = date(2025, 6, 15)
CN = {c: i for i, c in enumerate("零一二三四五六七八九")}
FORBIDDEN_IN_PLACE_NAMES = re.compile(
    "[〇零一二三四五六七八九十百千万两栋幢座楼号室县镇乡]|单元|街道"
)


@pytest.fixture(scope="module")
def county() -> County:
    return generate_county(9000, seed=11, today=TODAY)


def test_same_seed_same_county_and_other_seed_differs() -> None:
    a = generate_county(1500, seed=3, today=TODAY)
    b = generate_county(1500, seed=3, today=TODAY)
    c = generate_county(1500, seed=4, today=TODAY)
    for field in ("syrk_rows", "jq_rows", "party_members", "party_activities", "jzdx_rows",
                  "elderly_rosters", "disability_rosters", "hotline_tickets"):  # fmt: skip
        assert getattr(a, field) == getattr(b, field), field
    assert a.truth_police() == b.truth_police()
    assert a.syrk_rows != c.syrk_rows


def test_id_checker_agrees_with_published_examples() -> None:
    assert idcards.is_valid("11010519491231002X")
    assert not idcards.is_valid("110105194912310021")
    assert idcards.upgrade15("110105491231002") == "11010519491231002X"
    assert not idcards.is_valid("110105194902300028")  # 0230 never happens


def test_every_truth_id_is_valid_and_every_dead_letter_row_is_not(county: County) -> None:
    truth = county.truth_police()
    assert truth.residents
    assert all(idcards.is_valid(key) for key in truth.residents)
    rows = {row["rkbh"]: row for row in county.syrk_rows}
    reasons = Counter(truth.dead_letters.values())
    assert reasons["invalid_check_char"] >= 2 and reasons["invalid_birth_date"] >= 2
    for rkbh, reason in truth.dead_letters.items():
        raw = rows[rkbh]["gmsfhm"].upper()
        assert len(raw) == 18 and not idcards.is_valid(raw)
        if reason == "invalid_birth_date":
            assert raw[10:14] == "0230"
            assert idcards.check_char(raw[:17]) == raw[17]  # only the date is wrong


def test_truth_counts_add_up(county: County) -> None:
    truth = county.truth_police()
    rkbhs = [row["rkbh"] for row in county.syrk_rows]
    assert len(set(rkbhs)) == len(rkbhs)
    assert len(truth.residents) + len(truth.dead_letters) == len(county.syrk_rows)
    absent = len(county.persons) - len(county.syrk_rows)
    assert 0 < absent < 0.05 * len(county.persons)


def test_syrk_rows_have_the_spec_columns_and_value_shapes(county: County) -> None:
    columns = ["rkbh", "gmsfhm", "xm", "xb", "csrq", "lxdh", "hjdz", "jzdz", "dzbm", "rylb",
               "zrq", "zxbz", "gxsj"]  # fmt: skip
    for row in county.syrk_rows:
        assert list(row) == columns
        assert row["xb"] in {"1", "2", "9"} and row["rylb"] in {"01", "02", "03"}
        assert row["zxbz"] in {"0", "1"} and len(row["csrq"]) == 8
        assert isinstance(row["gxsj"], datetime) and row["gxsj"].tzinfo is None
        assert row["gxsj"].microsecond == 0
    busiest = Counter(row["gxsj"] for row in county.syrk_rows).most_common(1)[0][1]
    assert busiest >= 20  # many rows share one second


def test_syrk_nasty_cases_and_their_truth(county: County) -> None:
    truth = county.truth_police().residents
    by_rkbh = {r.rkbh: r for r in county.police_records}
    seen: Counter[str] = Counter()
    for row in county.syrk_rows:
        record = by_rkbh[row["rkbh"]]
        if record.dead_reason:
            continue
        raw = row["gmsfhm"]
        key = idcards.upgrade15(raw) if len(raw) == 15 else raw.upper()
        expected = truth[key]
        if len(raw) == 15:
            seen["legacy15"] += 1
            assert int(key[6:10]) < 1980
        if raw.endswith("x"):
            seen["lower_x"] += 1
        if row["xb"] == "9":
            seen["xb9"] += 1
            assert expected["gender"] == ("男" if int(key[16]) % 2 else "女")
        else:
            assert expected["gender"] == {"1": "男", "2": "女"}[row["xb"]]
        if row["lxdh"] and row["lxdh"].startswith("0518-"):
            seen["landline"] += 1
            assert expected["phone"] == row["lxdh"].replace("-", "")
        if row["lxdh"] is None or row["lxdh"] == "":
            seen["no_phone"] += 1
            assert expected["phone"] is None
        if row["xm"] != row["xm"].strip() or "\u3000" in row["xm"] or " " in row["xm"]:
            seen["name_spaces"] += 1
        assert expected["name"] == unicodedata.normalize("NFKC", row["xm"]).replace(" ", "")
        assert expected["address"] == row["jzdz"].strip()
        assert expected["birth_date"] == date.fromisoformat(
            f"{key[6:10]}-{key[10:12]}-{key[12:14]}"
        )
        assert expected["deregistered"] == (row["zxbz"] == "1")
        assert (
            expected["population_type"] == {"01": "户籍", "02": "流动", "03": "境外"}[row["rylb"]]
        )
        if row["rylb"] == "03":
            assert key.startswith("9") and "·" in expected["name"]
        assert expected["sources"] == ["police"]
    for case in ("legacy15", "lower_x", "xb9", "landline", "no_phone", "name_spaces"):
        assert seen[case] >= 1, case
    landlines = Counter(r["lxdh"] for r in county.syrk_rows if (r["lxdh"] or "").startswith("0"))
    assert landlines.most_common(1)[0][1] >= 2  # a household shares one landline
    assert any(p.age(TODAY) >= 80 for p in county.persons)
    assert any("·" in r["xm"] and r["rylb"] != "03" for r in county.syrk_rows)


def test_reference_csvs_have_the_spec_columns(county: County, tmp_path: Path) -> None:
    county.write_reference(tmp_path)
    grids = _read(tmp_path / "grids.csv")
    addresses = _read(tmp_path / "addresses.csv")
    crosswalk = _read(tmp_path / "crosswalk.csv")
    assert list(grids[0]) == ["grid_code", "grid_name", "community_code", "community_name",
                              "street_code", "street_name", "county_code", "county_name",
                              "polygon_wkt"]  # fmt: skip
    assert list(addresses[0]) == ["address_id", "grid_code", "standard_address", "aliases",
                                  "lng", "lat"]  # fmt: skip
    assert list(crosswalk[0]) == ["system", "system_area_code", "grid_code", "is_primary"]
    for g in grids:
        assert re.fullmatch(r"\d{15}", g["grid_code"])
        assert g["grid_code"].startswith(g["community_code"])
        assert g["community_code"].startswith(g["street_code"]) and len(g["street_code"]) == 9
        assert g["street_code"].startswith(g["county_code"]) and g["county_code"] == "320723"
    assert 1 <= sum(1 for g in grids if not g["polygon_wkt"]) < len(grids) / 10
    assert len({g["street_code"] for g in grids}) >= 2


def test_grids_hold_150_to_300_residents_in_20_to_60_resident_buildings(county: County) -> None:
    per_grid = Counter(p.grid_code for p in county.persons)
    per_building = Counter(p.address_id for p in county.persons)
    assert all(150 <= n <= 400 for n in per_grid.values())
    assert all(1 <= n <= 60 for n in per_building.values())
    assert sum(n >= 20 for n in per_building.values()) >= 0.95 * len(per_building)


def test_polygons_do_not_overlap_and_buildings_sit_inside_their_grid(county: County) -> None:
    geo = county.geography
    boxes = [_box(g.polygon_wkt) for g in geo.grids if g.polygon_wkt]
    for i, a in enumerate(boxes):
        assert 118.5 < a[0] < a[2] < 120 and 33.5 < a[1] < a[3] < 35
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    for building in geo.buildings:
        w, s, e, n = geo.grid_by_code[building.grid_code].bounds
        assert w < building.lng < e and s < building.lat < n


def test_crosswalk_areas_overlap_grids_with_exactly_one_primary(county: County) -> None:
    areas: dict[tuple[str, str], list[bool]] = {}
    for entry in county.geography.crosswalk:
        areas.setdefault((entry.system, entry.area_code), []).append(entry.is_primary)
    assert {system for system, _ in areas} == {"party", "police", "civil"}
    for (system, code), primaries in areas.items():
        assert primaries.count(True) == 1
        if system == "police":
            assert re.fullmatch(r"\d{12}-\d{2}", code) and 1 <= len(primaries) <= 3
        elif system == "party":
            assert re.fullmatch(r"DJ-\d{12}-\d{2}", code) and 1 <= len(primaries) <= 3
        else:
            assert re.fullmatch(r"\d{12}", code)
    grids_per_zone = Counter(e.grid_code for e in county.geography.crosswalk
                             if e.system == "police")  # fmt: skip
    assert max(grids_per_zone.values()) >= 2  # areas do not nest in grids


def test_addresses_list_alias_variants(county: County) -> None:
    building = county.geography.buildings[0]
    assert re.fullmatch(r"灌云县.+?(镇|乡|街道).+\d+号.+\d+栋", building.standard_address)
    aliases = [a for b in county.geography.buildings for a in b.aliases]
    assert any(a.endswith("号楼") for a in aliases)
    assert any(a.endswith("幢") for a in aliases)
    assert any(re.search("[一二三四五六七八九十]栋$", a) for a in aliases)
    assert not any(a.startswith("灌云县") for a in aliases)
    for b in county.geography.buildings:
        for name in (b.road, b.estate, re.sub("(镇|乡|街道)$", "", b.town_name)):
            assert not FORBIDDEN_IN_PLACE_NAMES.search(name), name


def test_every_address_match_row_matches_its_building_and_no_other(county: County) -> None:
    geo = county.geography
    towns = sorted({s.name for s in geo.streets}, key=len, reverse=True)
    index: dict[str, str] = {}
    for b in geo.buildings:
        for text in (b.standard_address, *b.aliases):
            key = _normalise(text, geo.county_name, towns)
            assert index.setdefault(key, b.address_id) == b.address_id, f"{text} collides"
    records = {r.rkbh: r for r in county.police_records}
    shapes: Counter[str] = Counter()
    for row in county.syrk_rows:
        record = records[row["rkbh"]]
        hit = index.get(_normalise(row["jzdz"], geo.county_name, towns))
        if record.placement == "address_match":
            assert hit == record.person.address_id, row["jzdz"]
            building = geo.building_by_id[record.person.address_id]
            shapes.update(_shapes(row["jzdz"].strip(), geo.county_name, building.aliases))
        elif record.placement in ("crosswalk", "unplaced"):
            assert hit is None, row["jzdz"]
    for shape in ("full_width", "chinese_numeral", "unit_word", "no_county", "trailing_unit",
                  "alias", "exact", "unknown_dzbm"):  # fmt: skip
        if shape == "unknown_dzbm":
            shapes[shape] = sum(1 for r in county.syrk_rows
                                if r["dzbm"] and r["dzbm"] not in geo.building_by_id)  # fmt: skip
        assert shapes[shape] >= 1, shape


def test_placement_truth_follows_the_spec_order(county: County) -> None:
    geo = county.geography
    truth = county.truth_police().residents
    records = {r.rkbh: r for r in county.police_records}
    placements: Counter[str] = Counter()
    for row in county.syrk_rows:
        record = records[row["rkbh"]]
        if record.dead_reason:
            continue
        expected = truth[record.person.id_number]
        placements[expected["placement"]] += 1
        if row["dzbm"] in geo.building_by_id:
            assert expected["placement"] == "address_id"
            assert expected["grid_code"] == geo.building_by_id[row["dzbm"]].grid_code
        elif expected["placement"] == "crosswalk":
            assert expected["grid_code"] == geo.primary_grid[("police", row["zrq"])]
        elif expected["placement"] == "unplaced":
            assert ("police", row["zrq"]) not in geo.primary_grid
            assert expected["grid_code"] is None and expected["community_code"] is None
        if expected["grid_code"]:
            assert expected["community_code"] == expected["grid_code"][:12]
    assert set(placements) == {"address_id", "address_match", "crosswalk", "unplaced"}
    assert placements["address_id"] > placements["address_match"] > placements["crosswalk"]


def test_party_items_have_the_api_shape_and_its_typing_quirks(county: County) -> None:
    keys = ["memberId", "idCard", "name", "gender", "birthDate", "mobile", "branchCode",
            "branchName", "partyGridCode", "memberType", "joinDate", "status",
            "reportCommunityCode", "residenceAddress", "updatedAt"]  # fmt: skip
    members = county.party_members
    assert all(list(m) == keys for m in members)
    assert all(m["updatedAt"].endswith("+08:00") for m in members)
    assert all(datetime.fromisoformat(m["updatedAt"]).tzinfo for m in members)
    mobiles = [m["mobile"] for m in members]
    assert "" in mobiles
    assert any(re.fullmatch(r"1\d\d \d{4} \d{4}", m) for m in mobiles)
    assert any(re.fullmatch(r"\+86-1\d\d-\d{4}-\d{4}", m) for m in mobiles)
    assert any(m["idCard"] != m["idCard"].strip() for m in members)
    assert any(m["idCard"].strip().endswith("x") for m in members)
    assert any("\u3000" in m["name"] for m in members)
    assert {m["status"] for m in members} >= {"在册", "转出"}
    assert any(m["reportCommunityCode"] for m in members)
    activity_keys = ["activityId", "memberId", "kind", "hours", "partyGridCode", "occurredAt",
                     "updatedAt"]  # fmt: skip
    activities = county.party_activities
    assert all(list(a) == activity_keys for a in activities)
    assert any(a["hours"] == 0 for a in activities)
    assert all(a["updatedAt"] >= a["occurredAt"] for a in activities)
    assert {a["kind"] for a in activities} == {"志愿服务", "双报到服务", "组织生活"}


def test_civil_rows_and_rosters(county: County) -> None:
    keys = ["sfzh", "xm", "jzlx", "jtrk", "bzje", "ksrq", "jsrq", "sqdm", "jtzz", "lxdh",
            "hzsfzh", "deleted"]  # fmt: skip
    rows = county.jzdx_rows
    assert all(list(r) == keys for r in rows)
    assert all(isinstance(r["bzje"], Decimal) and idcards.is_valid(r["sfzh"]) for r in rows)
    assert any(r["deleted"] for r in rows)
    assert any(r["jsrq"] is not None and r["jsrq"] <= TODAY for r in rows)
    assert any(r["jsrq"] is None for r in rows)
    assert max(Counter(r["sfzh"] for r in rows).values()) >= 2
    assert list(county.elderly_rosters) == ["202503", "202504", "202505"]
    elderly = county.elderly_rosters["202505"]
    assert list(elderly[0]) == ["序号", "姓名", "身份证号码", "性别", "年龄", "所属社区",
                                "社区代码", "发放金额", "联系电话", "备注"]  # fmt: skip
    assert all(r["年龄"] >= 80 for r in elderly)
    assert any(re.fullmatch(r"\d\.\d{5}E\+17", r["身份证号码"]) for r in elderly)
    disabled = county.disability_rosters["202505"]
    assert list(disabled[0]) == ["序号", "姓名", "身份证号", "残疾类别", "残疾等级", "社区代码",
                                 "住址", "补贴金额"]  # fmt: skip
    for name in [r["姓名"] for r in elderly] + [r["姓名"] for r in disabled]:
        name.encode("gbk")


def test_hotline_tickets_have_the_api_shape_and_thin_identity(county: County) -> None:
    keys = ["ticketNo", "createTime", "updateTime", "callerName", "callerPhone",
            "callerIdCard", "address", "lng", "lat", "category", "subcategory", "content",
            "status", "handleDept", "deadline", "finishTime", "satisfaction", "urgent"]  # fmt: skip
    tickets = county.hotline_tickets
    assert all(list(t) == keys for t in tickets)
    assert all(isinstance(t["createTime"], int) and t["updateTime"] >= t["createTime"]
               for t in tickets)  # fmt: skip
    assert all(re.fullmatch(r"12345-\d{8}-\d{6}", t["ticketNo"]) for t in tickets)
    assert any(re.fullmatch(r"1\d\d\*{4}\d{4}", t["callerPhone"]) for t in tickets)
    assert any(t["callerName"] == "匿名" for t in tickets)
    assert any(re.fullmatch(r".{1,2}(先生|女士)", t["callerName"]) for t in tickets)
    assert any(t["callerIdCard"] for t in tickets)
    assert any(t["address"] == "" and t["lng"] is not None for t in tickets)
    assert any(t["address"].endswith("附近") for t in tickets)
    assert {t["status"] for t in tickets} >= {"办结", "回访"}


def test_police_incidents_have_the_table_shape(county: County) -> None:
    keys = ["jqbh", "bjsj", "jqlb", "jqlbmc", "fadz", "zrq", "jd", "wd", "bjrxm", "bjrdh",
            "bjrsfzh", "jqzt", "gxsj"]  # fmt: skip
    rows = county.jq_rows
    assert rows and all(list(r) == keys for r in rows)
    assert all(r["gxsj"] >= r["bjsj"] for r in rows)
    assert any(isinstance(r["jd"], Decimal) for r in rows) and any(r["jd"] is None for r in rows)
    truth = county.truth_police().residents
    assert all(r["bjrsfzh"] in truth for r in rows if r["bjrsfzh"])


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _box(wkt: str) -> tuple[float, float, float, float]:
    points = [tuple(map(float, p.split())) for p in wkt[len("POLYGON((") : -2].split(",")]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _chinese_to_int(text: str) -> int:
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (CN[tens] if tens else 1) * 10 + (CN[ones] if ones else 0)
    return CN[text]


def _normalise(text: str, county: str, towns: list[str]) -> str:
    """reference-data.md's rule, literally: the comparison key of an address."""
    t = unicodedata.normalize("NFKC", text).strip()
    t = re.sub("[一二三四五六七八九十]+", lambda m: str(_chinese_to_int(m.group())), t)
    t = re.sub(r"(\d+)(号楼|幢|座)", r"\1栋", t)
    t = re.sub(r"(\d+单元)?(\d+室)?$", "", t)
    t = t.removeprefix(county)
    for town in towns:
        if t.startswith(town):
            return t[len(town) :]
    return t


def _shapes(text: str, county: str, aliases: tuple[str, ...]) -> set[str]:
    shapes = set()
    if re.search("[０-９]", text):
        shapes.add("full_width")
    if re.search("[一二三四五六七八九十](栋|幢|号楼|座)", text):
        shapes.add("chinese_numeral")
    if re.search(r"\d(号楼|幢|座)$", text):
        shapes.add("unit_word")
    if not text.startswith(county):
        shapes.add("no_county")
    if re.search("单元|室$", text):
        shapes.add("trailing_unit")
    if any(alias in text for alias in aliases):
        shapes.add("alias")
    if re.fullmatch(rf"{county}.+\d+号.+\d+栋", text):
        shapes.add("exact")
    return shapes


def test_rejects_a_county_too_small_for_its_faults_or_a_bad_code() -> None:
    with pytest.raises(ValueError):
        generate_county(50)
    with pytest.raises(ValueError):
        generate_county(1000, county_code="32072")
