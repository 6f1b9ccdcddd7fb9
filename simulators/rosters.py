"""The clerks' roster drop directory (发放花名册).

Writes the two roster kinds exactly as spec/sources/civil-affairs.md
describes them: ``高龄津贴_YYYYMM.csv`` in GBK with CRLF line endings, and
``残疾人两项补贴_YYYYMM.xlsx`` with a merged title row. Each file is written
completely before its ``<filename>.ok`` marker, like a clerk's copy job;
``without_marker=True`` leaves a file that is "still being copied". Files
are never deleted; dropping a month again overwrites it under the same name.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook

ELDERLY_HEADER = ("序号", "姓名", "身份证号码", "性别", "年龄", "所属社区", "社区代码", "发放金额",
                  "联系电话", "备注")  # fmt: skip
DISABILITY_HEADER = ("序号", "姓名", "身份证号", "残疾类别", "残疾等级", "社区代码", "住址",
                     "补贴金额")  # fmt: skip
DISABILITY_TITLE = "灌云县残疾人两项补贴发放花名册"
_MONTH = re.compile(r"\d{4}(0[1-9]|1[0-2])")


def _check_month(month: str) -> None:
    if not _MONTH.fullmatch(month):
        raise ValueError(f"month must be YYYYMM, got {month!r}")


def _money(value: Any) -> str:
    return f"{Decimal(str(value)):.2f}"


class RosterDirectory:
    """A directory the clerks drop monthly rosters into."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)

    def drop_elderly(
        self,
        month: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        leading_blank_line: bool = True,
        total_line: bool = True,
        without_marker: bool = False,
    ) -> Path:
        """Writes ``高龄津贴_<month>.csv`` (GBK, CRLF) and then its marker.

        Rows are keyed by ``ELDERLY_HEADER``; the total line sums ``发放金额``.
        Returns the roster's path.
        """
        _check_month(month)
        buffer = io.StringIO(newline="")
        if leading_blank_line:
            buffer.write("\r\n")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(ELDERLY_HEADER)
        for row in rows:
            writer.writerow([_money(row[c]) if c == "发放金额" else row[c] for c in ELDERLY_HEADER])
        if total_line:
            total = sum((Decimal(str(row["发放金额"])) for row in rows), Decimal("0"))
            writer.writerow(["合计", "", "", "", "", "", "", f"{total:.2f}", "", ""])
        target = self.path / f"高龄津贴_{month}.csv"
        target.write_bytes(buffer.getvalue().encode("gbk"))
        return self._finish(target, without_marker)

    def drop_disability(
        self,
        month: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        title: str = DISABILITY_TITLE,
        without_marker: bool = False,
    ) -> Path:
        """Writes ``残疾人两项补贴_<month>.xlsx`` and then its marker.

        Row 1 is ``title`` merged across the columns, row 2 the header; the
        ID number is a text cell and the amount a number. Returns the path.
        """
        _check_month(month)
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "Sheet1"
        sheet.cell(row=1, column=1, value=title)
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(DISABILITY_HEADER))
        sheet.append(list(DISABILITY_HEADER))
        id_column = DISABILITY_HEADER.index("身份证号") + 1
        for row in rows:
            values = [row[c] for c in DISABILITY_HEADER]
            values[-1] = float(Decimal(str(row["补贴金额"])))
            values[id_column - 1] = str(row["身份证号"])
            sheet.append(values)
            sheet.cell(row=sheet.max_row, column=id_column).number_format = "@"
        target = self.path / f"残疾人两项补贴_{month}.xlsx"
        buffer = io.BytesIO()
        book.save(buffer)
        target.write_bytes(buffer.getvalue())
        return self._finish(target, without_marker)

    def mark_complete(self, roster: Path) -> Path:
        """Writes ``<roster>.ok`` (the copy has finished); returns the marker's path.

        The marker holds the roster's size and SHA-256, so a re-drop always
        rewrites it with new content.
        """
        data = roster.read_bytes()
        marker = roster.with_name(roster.name + ".ok")
        marker.write_text(f"{len(data)} {hashlib.sha256(data).hexdigest()}\n", encoding="ascii")
        return marker

    def _finish(self, target: Path, without_marker: bool) -> Path:
        if not without_marker:
            self.mark_complete(target)
        return target
