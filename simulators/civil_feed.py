"""Civil-affairs data: ``jzdx`` rows and the monthly allowance rosters.

``jzdx`` rows are shaped as PostgreSQL rows without ``id`` and
``updated_at`` (the database assigns both). Roster rows are keyed by the
Chinese column headers of the files (spec/sources/civil-affairs.md); the
roster writer adds the title, header and total lines.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from gridhub.simulators import idcards
from gridhub.simulators.addressing import random_variant
from gridhub.simulators.geography import Geography
from gridhub.simulators.population import Person
from gridhub.simulators.sampling import pick

Row = dict[str, Any]

ASSISTANCE_KINDS = ("低保", "特困", "临时救助")
ASSISTANCE_WEIGHTS = (60, 15, 25)
DISABILITY_KINDS = ("视力", "听力", "言语", "肢体", "智力", "精神", "多重")
DISABILITY_GRADES = ("一级", "二级", "三级", "四级")


def phone_as_stored(phone: str | None) -> str | None:
    """A clerk's way of typing a phone: landlines with a dash after the area code."""
    if phone is None:
        return None
    return f"{phone[:4]}-{phone[4:]}" if phone.startswith("0") else phone


def _amount(jzlx: str, jtrk: int, rng: random.Random) -> Decimal:
    if jzlx == "低保":
        return Decimal(780 * jtrk)
    if jzlx == "特困":
        return Decimal("1040.00")
    return Decimal(rng.choice((500, 800, 1000, 1500, 3000)))


def _dates(rng: random.Random, jzlx: str, today: date) -> tuple[date, date | None]:
    """Start and end; temporary help ends after a month, the rest may run on."""
    ksrq = today - timedelta(days=rng.randint(40, 2000))
    if jzlx == "临时救助":
        return ksrq, ksrq + timedelta(days=30)
    if rng.random() < 0.15:
        return ksrq, today + timedelta(days=rng.randint(30, 365))
    return ksrq, None


def _end_some(rng: random.Random, rows: list[Row], today: date) -> None:
    """Ends about a quarter of the open-ended rows at a date in the past."""
    running = [row for row in rows if row["jsrq"] is None]
    for row in pick(rng, running, 0.25, 2):
        days = (today - row["ksrq"]).days
        row["jsrq"] = row["ksrq"] + timedelta(days=rng.randint(30, days))


def build_jzdx(
    rng: random.Random,
    geo: Geography,
    people: Sequence[Person],
    household_size: dict[int, int],
    household_head: dict[int, Person],
    today: date,
) -> list[Row]:
    """Assistance recipients: ~2.5% of residents, some with two rows, a few soft-deleted."""
    candidates = [p for p in people if p.population_type != "境外"]
    recipients = sorted(pick(rng, candidates, 0.025, 8), key=lambda p: p.index)
    twice = {p.index for p in pick(rng, recipients, 0.1, 2)}
    rows: list[Row] = []
    for person in recipients:
        jzlx = rng.choices(ASSISTANCE_KINDS, ASSISTANCE_WEIGHTS)[0]
        ksrq, jsrq = _dates(rng, jzlx, today)
        spells = [(jzlx, ksrq, jsrq)]
        if person.index in twice and rng.random() < 0.5:
            spells.append(("临时救助", *_dates(rng, "临时救助", today)))
        elif person.index in twice:
            # An earlier spell of the same kind that ended before this one began.
            earlier = ksrq - timedelta(days=rng.randint(200, 800))
            spells.insert(0, (jzlx, earlier, ksrq - timedelta(days=rng.randint(20, 100))))
        for spell, ksrq, jsrq in spells:
            jtrk = min(6, household_size[person.household])
            head = household_head[person.household]
            building = geo.building_by_id[person.address_id]
            rows.append({
                "sfzh": person.id_number,
                "xm": person.name,
                "jzlx": spell,
                "jtrk": jtrk,
                "bzje": _amount(spell, jtrk, rng).quantize(Decimal("0.01")),
                "ksrq": ksrq,
                "jsrq": jsrq,
                "sqdm": person.community_code,
                "jtzz": random_variant(building, rng),
                "lxdh": phone_as_stored(person.phone) if rng.random() < 0.9 else None,
                "hzsfzh": head.id_number if rng.random() < 0.7 else None,
                "deleted": False,
            })  # fmt: skip
    _end_some(rng, rows, today)
    for row in pick(rng, rows, 0.02, 1):
        row["deleted"] = True
    return rows


def roster_months(today: date, count: int = 3) -> list[str]:
    """The ``count`` months before the current one, oldest first (``YYYYMM``)."""
    months: list[str] = []
    year, month = today.year, today.month
    for _ in range(count):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        months.append(f"{year}{month:02d}")
    return months[::-1]


def _month_end(month: str) -> date:
    year, mon = int(month[:4]), int(month[4:])
    first_next = date(year + (mon == 12), mon % 12 + 1, 1)
    return first_next - timedelta(days=1)


def _old_age_amount(age: int) -> Decimal:
    return Decimal("500.00") if age >= 100 else Decimal("150.00") if age >= 90 else Decimal("50.00")


def build_elderly_rosters(
    rng: random.Random, geo: Geography, people: Sequence[Person], months: Sequence[str]
) -> dict[str, list[Row]]:
    """高龄津贴 rows per month: everyone 80+, a few IDs mangled by a spreadsheet."""
    rosters: dict[str, list[Row]] = {}
    for month in months:
        end = _month_end(month)
        eligible = [p for p in people if not p.deregistered and p.population_type != "境外"
                    and p.age(end) >= 80 and rng.random() < 0.99]  # fmt: skip
        mangled = {p.index for p in pick(rng, eligible, 0.01, 1)}
        rows: list[Row] = []
        for person in eligible:
            age = person.age(end)
            rows.append({
                "序号": len(rows) + 1,
                "姓名": person.name,
                "身份证号码": idcards.spreadsheet_mangled(person.id_number)
                if person.index in mangled else person.id_number,
                "性别": person.gender,
                "年龄": age,
                "所属社区": geo.community_by_code[person.community_code].name,
                "社区代码": person.community_code,
                "发放金额": _old_age_amount(age),
                "联系电话": phone_as_stored(person.phone) or "",
                "备注": "新增" if age == 80 else "",
            })  # fmt: skip
        rosters[month] = rows
    return rosters


def build_disability_rosters(
    rng: random.Random, geo: Geography, people: Sequence[Person], months: Sequence[str]
) -> dict[str, list[Row]]:
    """残疾人两项补贴 rows per month for a steady ~1.5% of residents."""
    candidates = [p for p in people if not p.deregistered and p.population_type != "境外"]
    chosen = sorted(pick(rng, candidates, 0.015, 4), key=lambda p: p.index)
    profile = {
        p.index: (rng.choice(DISABILITY_KINDS), rng.choices(DISABILITY_GRADES, (2, 3, 3, 2))[0])
        for p in chosen
    }
    rosters: dict[str, list[Row]] = {}
    for month in months:
        rows: list[Row] = []
        for person in chosen:
            if rng.random() < 0.02:
                continue
            kind, grade = profile[person.index]
            severe = grade in ("一级", "二级")
            rows.append({
                "序号": len(rows) + 1,
                "姓名": person.name,
                "身份证号": person.id_number,
                "残疾类别": kind,
                "残疾等级": grade,
                "社区代码": person.community_code,
                "住址": geo.building_by_id[person.address_id].standard_address,
                "补贴金额": Decimal("190.00") if severe else Decimal("90.00"),
            })  # fmt: skip
        rosters[month] = rows
    return rosters
