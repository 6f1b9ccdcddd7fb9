"""Reading the clerks' roster folder (发放花名册, civil-affairs.md section 2).

A roster is read only once its ``<filename>.ok`` marker exists and is not
older than the file: while a clerk copies a corrected roster over an old one,
the old marker still lies beside a file that is newer than it, and reading
then would take a half-copied file. The folder is only read, never changed.

Rows come out as dicts with the model's field names (``ElderlyAllowanceRow``,
``DisabilitySubsidyRow``); the models decide what is valid. What cannot
become such a dict (a row with the wrong number of cells, an ID number a
spreadsheet stored as a number) is a *problem* with the row's line and a
reason, for the dead letters. A file that cannot be read at all (not GBK,
no header row, a broken workbook) raises :class:`RosterUnreadable`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from gridhub.errors import GridhubError


class RosterUnreadable(GridhubError):
    """A roster file that yields no rows at all; the reason says what to fix."""


@dataclass(frozen=True)
class RosterKind:
    """One kind of roster: its file names, header and the allowance it pays."""

    allowance: str
    """The allowance as ``grid.resident.assistance`` names it."""
    entity: str
    schema: str
    pattern: re.Pattern[str]
    header: tuple[str, ...]
    fields: tuple[str, ...]
    """Model field of each header column, in order."""


_ELDERLY_HEADER = ("序号", "姓名", "身份证号码", "性别", "年龄", "所属社区", "社区代码", "发放金额",
                   "联系电话", "备注")  # fmt: skip
_ELDERLY_FIELDS = ("seq", "name", "id_number", "gender", "age", "community_name",
                   "community_code", "amount", "phone", "remark")  # fmt: skip
_DISABILITY_HEADER = ("序号", "姓名", "身份证号", "残疾类别", "残疾等级", "社区代码", "住址",
                      "补贴金额")  # fmt: skip
_DISABILITY_FIELDS = ("seq", "name", "id_number", "disability_category", "disability_level",
                      "community_code", "address", "amount")  # fmt: skip

ELDERLY = RosterKind(
    allowance="高龄津贴",
    entity="roster_elderly",
    schema="ElderlyAllowanceRow",
    pattern=re.compile(r"^高龄津贴_(\d{4}(?:0[1-9]|1[0-2]))\.csv$"),
    header=_ELDERLY_HEADER,
    fields=_ELDERLY_FIELDS,
)
DISABILITY = RosterKind(
    allowance="残疾人补贴",
    entity="roster_disability",
    schema="DisabilitySubsidyRow",
    pattern=re.compile(r"^残疾人两项补贴_(\d{4}(?:0[1-9]|1[0-2]))\.xlsx$"),
    header=_DISABILITY_HEADER,
    fields=_DISABILITY_FIELDS,
)
KINDS = (ELDERLY, DISABILITY)
MARKER_SUFFIX = ".ok"
TOTAL_LABEL = "合计"
HEADER_SEARCH_ROWS = 10
"""A header further down than this is not a roster's."""


@dataclass(frozen=True)
class RosterFile:
    """A roster whose marker says its copy has finished."""

    path: Path
    kind: RosterKind
    month: str
    marker_mtime_ns: int
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        """The file's name, which says its kind and month."""
        return self.path.name

    @property
    def completed_at(self) -> datetime:
        """When the copy finished (the marker's mtime), UTC with microseconds."""
        return datetime.fromtimestamp(self.marker_mtime_ns // 1000 / 1e6, tz=UTC)


@dataclass
class Problem:
    """A row that cannot become a record, for the dead letters."""

    line: int
    reason: str
    raw: bytes


@dataclass
class RosterContent:
    """What a roster file holds: its rows as model dicts, and the rows it could not give."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def complete_rosters(directory: Path) -> list[RosterFile]:
    """Rosters with a marker not older than the file, oldest month first.

    Raises:
        OSError: the folder cannot be listed.
    """
    found: list[RosterFile] = []
    for path in directory.iterdir():
        found_kind = next(((k, m) for k in KINDS if (m := k.pattern.match(path.name))), None)
        if found_kind is None:
            continue
        kind, match = found_kind
        marker = path.with_name(path.name + MARKER_SUFFIX)
        try:
            stat, marker_stat = path.stat(), marker.stat()
        except FileNotFoundError:
            continue  # no marker yet: still being copied
        if marker_stat.st_mtime_ns < stat.st_mtime_ns:
            continue  # the file was written again after its marker: a re-drop in progress
        found.append(
            RosterFile(
                path=path,
                kind=kind,
                month=match.group(1),
                marker_mtime_ns=marker_stat.st_mtime_ns,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
            )
        )
    found.sort(key=lambda r: (r.month, r.marker_mtime_ns, r.name))
    return found


def read_roster(roster: RosterFile, data: bytes, sha256: str) -> RosterContent:
    """The rows of one roster file's bytes.

    Raises:
        RosterUnreadable: the file yields no rows at all.
    """
    width = len(roster.kind.header)
    spreadsheet = roster.kind is not ELDERLY
    rows = _xlsx_rows(data) if spreadsheet else _csv_rows(data)
    content = RosterContent()
    header_at = _header_line(rows, roster.kind)
    for line, cells in rows[header_at + 1 :]:
        if not any(_text(cell) for cell in cells):
            continue
        while len(cells) > width and not _text(cells[-1]):
            cells = cells[:-1]  # empty cells right of the table
        if spreadsheet and len(cells) < width:
            cells = cells + [None] * (width - len(cells))  # a sheet leaves empty cells out
        if _text(cells[0]) == TOTAL_LABEL:
            continue  # the total line; amounts are checked per row by the model
        raw = ",".join(_text(cell) for cell in cells).encode("utf-8")
        if len(cells) != width:
            reason = f"{roster.name} line {line}: {len(cells)} cells where the header has {width}"
            content.problems.append(Problem(line, reason, raw))
            continue
        id_cell = cells[roster.kind.fields.index("id_number")]
        if isinstance(id_cell, int | float):
            reason = (
                f"{roster.name} line {line}: the ID number is stored as a number ({id_cell}), so "
                "its last digits may be lost; the clerk must export the column as text"
            )
            content.problems.append(Problem(line, reason, raw))
            continue
        record: dict[str, Any] = {
            "file_name": roster.name,
            "month": roster.month,
            "file_time": roster.completed_at,
            "file_sha256": sha256,
        }
        for name, cell in zip(roster.kind.fields, cells, strict=True):
            record[name] = _value(cell)
        record["name"] = record["name"] or ""
        content.rows.append(record)
    return content


def _text(cell: Any) -> str:
    return "" if cell is None else str(cell).strip()


def _value(cell: Any) -> Any:
    """A cell as the model takes it: trimmed text, a spreadsheet number as exact text, an
    empty cell as None."""
    if isinstance(cell, float):
        return str(Decimal(repr(cell)))
    if isinstance(cell, int):
        return str(cell)
    text = _text(cell)
    return text or None


def _header_line(rows: list[tuple[int, list[Any]]], kind: RosterKind) -> int:
    """Index in ``rows`` of the header row (after blank or title lines).

    Raises:
        RosterUnreadable: no header among the first rows.
    """
    for index, (_, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        texts = tuple(_text(cell).lstrip("\ufeff") for cell in cells)
        while texts and not texts[-1]:
            texts = texts[:-1]
        if texts == kind.header:
            return index
    raise RosterUnreadable(
        f"no header row {','.join(kind.header)} in the first {HEADER_SEARCH_ROWS} rows; "
        "is this the roster the file name says?"
    )


def _csv_rows(data: bytes) -> list[tuple[int, list[Any]]]:
    """GBK (or, when a clerk saved it so, UTF-8 with a byte-order mark) CSV lines."""
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="strict")
    else:
        try:
            text = data.decode("gb18030")  # GBK's superset: every GBK file decodes alike
        except UnicodeDecodeError as exc:
            raise RosterUnreadable(
                f"the file is not GBK text (byte {data[exc.start]:#04x} at offset {exc.start}); "
                "save it as GBK (ANSI) CSV"
            ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    return [(reader.line_num, list(cells)) for cells in reader]


def _xlsx_rows(data: bytes) -> list[tuple[int, list[Any]]]:
    """The first sheet's rows (the title row's merged cell reads as its first cell)."""
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise RosterUnreadable(
            f"the file is not a readable XLSX workbook ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        sheet = book.worksheets[0]
        return [
            (number, list(values))
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
        ]
    finally:
        book.close()
