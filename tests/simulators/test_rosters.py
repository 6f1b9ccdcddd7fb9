"""The roster drop directory: real files in a temporary folder."""

from __future__ import annotations

import csv
import hashlib
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from gridhub.simulators.county import generate_county
from gridhub.simulators.rosters import DISABILITY_HEADER, ELDERLY_HEADER, RosterDirectory
from openpyxl import load_workbook


def elderly(n: int, amount: str = "50.00", id_number: str = "32072319400101001X") -> dict[str, Any]:
    return {
        "序号": n, "姓名": "阿依古丽·买买提", "身份证号码": id_number, "性别": "女", "年龄": 85,
        "所属社区": "幸福社区", "社区代码": "320723100001", "发放金额": Decimal(amount),
        "联系电话": "0518-88123456", "备注": "",
    }  # fmt: skip


def disabled(n: int) -> dict[str, Any]:
    return {
        "序号": n, "姓名": "王芳", "身份证号": "320723198001010026", "残疾类别": "肢体",
        "残疾等级": "二级", "社区代码": "320723100001",
        "住址": "灌云县伊山镇幸福路18号幸福家园3栋", "补贴金额": Decimal("190.00"),
    }  # fmt: skip


def test_elderly_csv_is_gbk_crlf_with_blank_line_header_and_total(tmp_path: Path) -> None:
    rosters = RosterDirectory(tmp_path)
    path = rosters.drop_elderly(
        "202505", [elderly(1), elderly(2, "150.00", "3.20723E+17"), elderly(3, "500")]
    )
    assert path.name == "高龄津贴_202505.csv"
    raw = path.read_bytes()
    text = raw.decode("gbk")
    assert text.startswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert lines[1] == "序号,姓名,身份证号码,性别,年龄,所属社区,社区代码,发放金额,联系电话,备注"
    assert lines[-2] == "合计,,,,,,,700.00,,"
    assert lines[-1] == ""
    records = list(csv.reader(io.StringIO(text.strip("\r\n"), newline="")))
    assert records[1][1] == "阿依古丽·买买提" and records[1][7] == "50.00"
    assert records[2][2] == "3.20723E+17"
    assert len(records) == 5


def test_elderly_csv_without_the_optional_lines(tmp_path: Path) -> None:
    path = RosterDirectory(tmp_path).drop_elderly(
        "202505", [elderly(1)], leading_blank_line=False, total_line=False
    )
    lines = path.read_bytes().decode("gbk").split("\r\n")
    assert lines[0].startswith("序号,") and len(lines) == 3


def test_disability_xlsx_has_merged_title_text_ids_and_number_amounts(tmp_path: Path) -> None:
    path = RosterDirectory(tmp_path).drop_disability("202505", [disabled(1), disabled(2)])
    assert path.name == "残疾人两项补贴_202505.xlsx"
    sheet = load_workbook(path).worksheets[0]
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:H1"]
    assert sheet["A1"].value == "灌云县残疾人两项补贴发放花名册"
    assert [c.value for c in sheet[2]] == list(DISABILITY_HEADER)
    assert sheet["C3"].value == "320723198001010026" and sheet["C3"].data_type == "s"
    assert sheet["H3"].value == 190 and sheet["H3"].data_type == "n"
    assert sheet.max_row == 4


def test_marker_follows_the_file_and_matches_its_content(tmp_path: Path) -> None:
    rosters = RosterDirectory(tmp_path)
    path = rosters.drop_elderly("202505", [elderly(1)])
    marker = tmp_path / "高龄津贴_202505.csv.ok"
    assert marker.stat().st_mtime_ns >= path.stat().st_mtime_ns
    assert hashlib.sha256(path.read_bytes()).hexdigest() in marker.read_text()
    xlsx = rosters.drop_disability("202505", [disabled(1)])
    assert (tmp_path / f"{xlsx.name}.ok").stat().st_mtime_ns >= xlsx.stat().st_mtime_ns


def test_file_still_being_copied_has_no_marker_until_marked(tmp_path: Path) -> None:
    rosters = RosterDirectory(tmp_path)
    path = rosters.drop_disability("202504", [disabled(1)], without_marker=True)
    assert path.exists() and not (tmp_path / f"{path.name}.ok").exists()
    marker = rosters.mark_complete(path)
    assert marker.name == f"{path.name}.ok" and marker.exists()


def test_redrop_replaces_the_month_and_rewrites_its_marker(tmp_path: Path) -> None:
    rosters = RosterDirectory(tmp_path)
    first = rosters.drop_elderly("202505", [elderly(1), elderly(2)])
    other = rosters.drop_elderly("202504", [elderly(1)])
    old_marker = (tmp_path / f"{first.name}.ok").read_text()
    again = rosters.drop_elderly("202505", [elderly(1)])
    assert again == first
    assert "合计,,,,,,,50.00,," in again.read_bytes().decode("gbk")
    assert (tmp_path / f"{first.name}.ok").read_text() != old_marker
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [first.name, f"{first.name}.ok", other.name, f"{other.name}.ok"]
    )


def test_generated_rosters_write_cleanly(tmp_path: Path) -> None:
    county = generate_county(3000, seed=2)
    rosters = RosterDirectory(tmp_path)
    for month, rows in county.elderly_rosters.items():
        text = rosters.drop_elderly(month, rows).read_bytes().decode("gbk")
        assert text.count("\r\n") == len(rows) + 3
    for month, rows in county.disability_rosters.items():
        sheet = load_workbook(rosters.drop_disability(month, rows)).worksheets[0]
        assert sheet.max_row == len(rows) + 2
    assert list(ELDERLY_HEADER) == list(next(iter(county.elderly_rosters.values()))[0])
