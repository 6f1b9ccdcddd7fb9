"""The public-security tables ``syrk`` and ``jq`` as rows, and their truth.

Each ``syrk`` row is written from a real person plus a few deliberately
injected faults (spec/sources/public-security.md, spec/identity.md). The
expected result for the row is decided at the moment the fault is chosen and
kept in a ``PoliceRecord``; nothing here re-parses a row to find out what the
hub should make of it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from gridhub.simulators import idcards
from gridhub.simulators.addressing import (
    TRAILERS,
    VARIANT_KINDS,
    nonmatching_address,
    render_variant,
    vague_address,
)
from gridhub.simulators.geography import Building, Geography
from gridhub.simulators.names import person_name
from gridhub.simulators.population import Person, shared_phones
from gridhub.simulators.sampling import moment, pick

Row = dict[str, Any]

RYLB = {"户籍": "01", "流动": "02", "境外": "03"}
BAD_CHECK_CHAR = "invalid_check_char"
BAD_BIRTH_DATE = "invalid_birth_date"
INCIDENT_KINDS = (
    ("01", "刑事", 3), ("02", "治安", 20), ("03", "交通", 15), ("04", "纠纷", 25),
    ("05", "求助", 30), ("06", "火灾", 2), ("99", "其他", 5),
)  # fmt: skip
INCIDENT_STATES = ("已受理", "已处警", "已结案")


@dataclass(slots=True)
class PoliceRecord:
    """A ``syrk`` row's expected outcome, fixed when its faults were chosen."""

    rkbh: str
    person: Person
    name: str
    phone: str | None
    address: str
    placement: str
    grid_code: str | None
    dead_reason: str | None


@dataclass(frozen=True)
class PoliceTruth:
    """What the hub must make of ``syrk``: residents by ID and dead letters by rkbh."""

    residents: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letters: dict[str, str] = field(default_factory=dict)


@dataclass
class _Faults:
    """Row indexes (into the shuffled person list) chosen for each fault."""

    bad_check: set[int]
    bad_date: set[int]
    legacy15: set[int]
    lower_x: set[int]
    xb_unknown: set[int]
    phone_null: set[int]
    phone_empty: set[int]
    phone_plus86: set[int]
    no_dzbm: set[int]
    unknown_dzbm: set[int]
    no_match: set[int]
    unplaced: set[int]
    name_spaces: set[int]
    name_inner: set[int]
    address_spaces: set[int]


def _choose_faults(rng: random.Random, people: Sequence[Person]) -> _Faults:
    shared = shared_phones(tuple(people))
    rows = range(len(people))
    lonely = [
        i for i in rows
        if people[i].mobile and people[i].phone == people[i].mobile
        and people[i].phone not in shared and people[i].population_type != "境外"
    ]  # fmt: skip
    dead = pick(rng, lonely, 0.003, 4)
    bad_check = set(dead[: len(dead) // 2])
    bad_date = set(dead[len(dead) // 2 :])
    valid = [i for i in rows if i not in bad_check and i not in bad_date]
    old = [i for i in valid if people[i].birth_date.year < 1980]
    ends_x = [i for i in valid if people[i].id_number.endswith("X")]
    no_dzbm = pick(rng, valid, 0.2, 30)
    no_match = pick(rng, no_dzbm, 0.1, 3)
    matchless = set(no_match)
    unplaced = pick(rng, [i for i in no_dzbm if i not in matchless], 0.02, 2)
    with_dzbm = sorted(set(valid) - set(no_dzbm))
    return _Faults(
        bad_check=bad_check,
        bad_date=bad_date,
        legacy15=set(pick(rng, old, 0.05, 3)),
        lower_x=set(pick(rng, ends_x, 0.3, 2)),
        xb_unknown=set(pick(rng, valid, 0.01, 3)),
        phone_null=set(pick(rng, valid, 0.05, 3)),
        phone_empty=set(pick(rng, valid, 0.005, 2)),
        phone_plus86=set(pick(rng, valid, 0.01, 2)),
        no_dzbm=set(no_dzbm),
        unknown_dzbm=set(pick(rng, with_dzbm, 0.005, 3)),
        no_match=set(no_match),
        unplaced=set(unplaced),
        name_spaces=set(pick(rng, valid, 0.02, 2)),
        name_inner=set(pick(rng, valid, 0.01, 2)),
        address_spaces=set(pick(rng, valid, 0.01, 2)),
    )


def _gxsj_source(rng: random.Random, end: datetime, rows: int) -> list[datetime]:
    """Update times: 30% land on a few batch-job seconds, the rest anywhere."""
    batches = [moment(rng, end, 400).replace(hour=2, minute=0, second=0)
               for _ in range(max(3, rows // 2000))]  # fmt: skip
    return [rng.choice(batches) if rng.random() < 0.3 else moment(rng, end, 400)
            for _ in range(rows)]  # fmt: skip


def build_syrk(
    rng: random.Random, geo: Geography, people: Sequence[Person], today: date
) -> tuple[list[Row], list[PoliceRecord]]:
    """Rows of ``syrk`` (latest state only) and their expected outcomes."""
    order = list(people)
    rng.shuffle(order)
    faults = _choose_faults(rng, order)
    end = datetime.combine(today, datetime.min.time())
    stamps = _gxsj_source(rng, end, len(order))
    variant_turn = 0
    rows: list[Row] = []
    records: list[PoliceRecord] = []
    for i, person in enumerate(order):
        building = geo.building_by_id[person.address_id]
        rkbh = f"{geo.county_code}{i + 1:010d}"
        gmsfhm, dead_reason = _render_id(person.id_number, i, faults)
        xm = person.name
        if i in faults.name_inner and len(xm) >= 2 and "·" not in xm:
            xm = xm[0] + rng.choice(("\u3000", " ")) + xm[1:]
        if i in faults.name_spaces:
            xm = f" {xm}\u3000" if rng.random() < 0.5 else f"{xm} "
        lxdh, phone = _render_phone(person.phone, i, faults)

        jzdz, dzbm, zrq, placement, grid_code = _residence(
            rng, geo, building, i, faults, variant_turn
        )
        variant_turn += placement == "address_match"
        address = jzdz
        if i in faults.address_spaces:
            jzdz = f"  {jzdz} "

        rows.append({
            "rkbh": rkbh,
            "gmsfhm": gmsfhm,
            "xm": xm,
            "xb": "9" if i in faults.xb_unknown else ("1" if person.gender == "男" else "2"),
            "csrq": gmsfhm[6:14] if len(gmsfhm) == 18 else f"{person.birth_date:%Y%m%d}",
            "lxdh": lxdh,
            "hjdz": person.hjdz,
            "jzdz": jzdz,
            "dzbm": dzbm,
            "rylb": RYLB[person.population_type],
            "zrq": zrq,
            "zxbz": "1" if person.deregistered else "0",
            "gxsj": stamps[i],
        })  # fmt: skip
        records.append(PoliceRecord(
            rkbh=rkbh, person=person, name=person.name, phone=phone, address=address,
            placement=placement, grid_code=grid_code, dead_reason=dead_reason,
        ))  # fmt: skip
    return rows, records


def _residence(
    rng: random.Random, geo: Geography, building: Building, i: int, faults: _Faults, turn: int
) -> tuple[str, str | None, str, str, str | None]:
    """``jzdz``, ``dzbm``, ``zrq`` as stored, and the placement the hub should reach.

    The spec's order decides: a known ``dzbm``; else ``jzdz`` matching a
    standard address; else the zone's primary grid; else unplaced (a zone
    the crosswalk does not know). The first matching rows (``turn``) go
    through every variant kind once, so every county has all of them.
    """
    zrq = geo.owner_zone[building.grid_code]
    if i in faults.no_match or i in faults.unplaced:
        jzdz = nonmatching_address(building, rng)
        if i in faults.unplaced:
            return jzdz, None, geo.unknown_zone, "unplaced", None
        return jzdz, None, zrq, "crosswalk", geo.primary_grid[("police", zrq)]
    if i in faults.no_dzbm or i in faults.unknown_dzbm:
        dzbm = None if i in faults.no_dzbm else f"DZ{geo.county_code}9{rng.randrange(10**7):07d}"
        kind = VARIANT_KINDS[turn] if turn < len(VARIANT_KINDS) else rng.choice(VARIANT_KINDS)
        return (
            render_variant(building, kind, rng),
            dzbm,
            zrq,
            "address_match",
            building.grid_code,
        )
    trailer = rng.choice(TRAILERS) if rng.random() < 0.15 else ""
    return (
        building.standard_address + trailer,
        building.address_id,
        zrq,
        "address_id",
        building.grid_code,
    )


def _render_id(id_number: str, i: int, faults: _Faults) -> tuple[str, str | None]:
    if i in faults.bad_check:
        return idcards.with_wrong_check(id_number), BAD_CHECK_CHAR
    if i in faults.bad_date:
        return idcards.with_impossible_date(id_number), BAD_BIRTH_DATE
    if i in faults.legacy15:
        return idcards.to_legacy15(id_number), None
    if i in faults.lower_x:
        return id_number.lower(), None
    return id_number, None


def _render_phone(phone: str | None, i: int, faults: _Faults) -> tuple[str | None, str | None]:
    """``lxdh`` as stored, and the normalised phone the hub should keep."""
    if phone is None or i in faults.phone_null:
        return None, None
    if i in faults.phone_empty:
        return "", None
    if phone.startswith("0"):
        return f"{phone[:4]}-{phone[4:]}", phone
    if i in faults.phone_plus86:
        return f"+86{phone}", phone
    return phone, phone


def police_truth(records: Sequence[PoliceRecord], geo: Geography) -> PoliceTruth:
    """Expected ``grid.resident`` fields for every valid row; reasons for the rest."""
    truth = PoliceTruth()
    for record in records:
        if record.dead_reason:
            truth.dead_letters[record.rkbh] = record.dead_reason
            continue
        person = record.person
        grid = geo.grid_by_code[record.grid_code] if record.grid_code else None
        truth.residents[person.id_number] = {
            "name": record.name,
            "gender": person.gender,
            "birth_date": person.birth_date,
            "phone": record.phone,
            "address": record.address,
            "grid_code": record.grid_code,
            "community_code": grid.community_code if grid else None,
            "placement": record.placement,
            "population_type": person.population_type,
            "deregistered": person.deregistered,
            "sources": ["police"],
        }
    return truth


def build_jq(
    rng: random.Random,
    geo: Geography,
    reporters: Sequence[Person],
    today: date,
    truth: dict[str, str | None] | None = None,
    places: dict[str, tuple[str | None, str | None]] | None = None,
) -> list[Row]:
    """Police incidents of the last 60 days; reporters are ``syrk`` residents or strangers.

    ``truth``, when given, receives each incident's reporter (``jqbh`` -> 18-character ID
    number, or None for a stranger): what linking should find; and ``places`` the
    (grid, community) where the incident's own address, point or zone place it."""
    end = datetime.combine(today, datetime.min.time())
    count = max(10, len(reporters) // 40)
    codes, labels, weights = zip(*INCIDENT_KINDS, strict=True)
    rows: list[Row] = []
    serial: dict[date, int] = {}
    for _ in range(count):
        bjsj = moment(rng, end, 60)
        reporter = rng.choice(reporters) if rng.random() < 0.7 else None
        building = (
            geo.building_by_id[reporter.address_id]
            if reporter and rng.random() < 0.6
            else rng.choice(geo.buildings)
        )
        grid = geo.grid_by_code[building.grid_code]
        place = rng.random()
        if place < 0.5:
            fadz = render_variant(building, rng.choice(VARIANT_KINDS), rng)
        elif place < 0.8:
            fadz = vague_address(building, rng)
        else:
            fadz = nonmatching_address(building, rng)
        lng, lat = grid.point_inside(rng)
        with_point = rng.random() < 0.5
        name = reporter.name if reporter else person_name(rng)
        phone = reporter.mobile if reporter else "170" + f"{rng.randrange(10**8):08d}"
        k = rng.choices(range(len(codes)), weights)[0]
        serial[bjsj.date()] = serial.get(bjsj.date(), 0) + 1
        rows.append({
            "jqbh": f"J{geo.county_code}{bjsj:%Y%m%d}{serial[bjsj.date()]:05d}",
            "bjsj": bjsj,
            "jqlb": codes[k],
            "jqlbmc": labels[k],
            "fadz": fadz,
            "zrq": geo.owner_zone[grid.code],
            "jd": Decimal(f"{lng:.6f}") if with_point else None,
            "wd": Decimal(f"{lat:.6f}") if with_point else None,
            "bjrxm": name if rng.random() < 0.9 else None,
            "bjrdh": phone if rng.random() < 0.85 else None,
            "bjrsfzh": reporter.id_number if reporter and rng.random() < 0.05 else None,
            "jqzt": rng.choice(INCIDENT_STATES),
            "gxsj": min(end, bjsj + timedelta(minutes=rng.randint(5, 4000))),
        })  # fmt: skip
        if truth is not None:
            truth[rows[-1]["jqbh"]] = reporter.id_number if reporter else None
        if places is not None:  # a standard address, else the point, else the police zone
            zone_grid = geo.primary_grid[("police", rows[-1]["zrq"])]
            by_zone = (zone_grid, geo.grid_by_code[zone_grid].community_code)
            in_grid = (grid.code, grid.community_code)
            by_point = with_point and grid.has_polygon
            places[rows[-1]["jqbh"]] = in_grid if place < 0.5 or by_point else by_zone
    return rows
