"""The county's people as they really are (the ground truth of identity).

Everyone lives in a building of the map, in a household. Households give
the data its realistic sharing: an elderly couple answering one landline, a
child reachable only on a parent's mobile. Every identity number here is
valid and normalised; the source generators add the faults.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from gridhub.simulators import idcards
from gridhub.simulators.geography import Geography
from gridhub.simulators.names import (
    NATIONALITIES,
    OTHER_AREAS,
    VILLAGE_NAMES,
    foreign_name,
    minority_name,
    person_name,
    surname_of,
)

LOCAL_AREA_CODE = "0518"
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
    "155", "157", "158", "159", "166", "177", "180", "181", "182", "185", "187", "188",
    "189", "199",
)  # fmt: skip


@dataclass(slots=True)
class Person:
    """One real person of the county (read-only by convention; slots keep 50k cheap)."""

    index: int
    id_number: str
    name: str
    gender: str
    birth_date: date
    population_type: str
    deregistered: bool
    household: int
    address_id: str
    grid_code: str
    community_code: str
    mobile: str | None
    phone: str | None
    """The number the person gives to agencies, normalised: landline
    ``0518xxxxxxxx``, own mobile, or a household member's mobile; may be
    shared with other members of the household."""
    hjdz: str | None

    def age(self, on: date) -> int:
        """Completed years on the given day."""
        years = on.year - self.birth_date.year
        return years - ((on.month, on.day) < (self.birth_date.month, self.birth_date.day))


@dataclass
class _Member:
    age: int
    male: bool
    name: str


class _Numbers:
    """Hands out unique identity numbers, mobiles and landlines."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ids: set[str] = set()
        self._phones: set[str] = set()

    def id_number(self, area: str, birth: date, male: bool) -> str:
        while True:
            sequence = 2 * int(self._rng.random() * 500) + (1 if male else 0)
            candidate: str = idcards.make_id(area, birth, sequence)
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def mobile(self) -> str:
        return self._unique(lambda: self._rng.choice(MOBILE_PREFIXES) + self._digits(8))

    def landline(self) -> str:
        return self._unique(lambda: LOCAL_AREA_CODE + "8" + self._digits(7))

    def _digits(self, n: int) -> str:
        return f"{int(self._rng.random() * 10**n):0{n}d}"

    def _unique(self, make: Callable[[], str]) -> str:
        while True:
            candidate = make()
            if candidate not in self._phones:
                self._phones.add(candidate)
                return candidate


def _household_members(rng: random.Random, size_left: int, minority: bool) -> list[_Member]:
    """Ages, sexes and names of one household (head first)."""
    kind = rng.choices(("single", "couple", "family", "three"), (22, 28, 35, 15))[0]
    if kind == "single":
        ages = [rng.randint(18, 59) if rng.random() < 0.65 else rng.randint(60, 92)]
    elif kind == "couple":
        head = rng.choice((rng.randint(22, 59), rng.randint(55, 79), rng.randint(60, 90)))
        ages = [head, max(20, head + rng.randint(-4, 4))]
    else:
        head = rng.randint(28, 55) if kind == "family" else rng.randint(30, 50)
        ages = [head, max(20, head + rng.randint(-4, 4))]
        ages += [
            rng.randint(0, head - 22) for _ in range(rng.randint(1, 3 if kind == "family" else 2))
        ]
        if kind == "three":
            ages += [min(101, head + rng.randint(24, 34)) for _ in range(rng.randint(1, 2))]
    ages = ages[:size_left]
    head_male = rng.random() < 0.6
    sexes = [head_male, not head_male] + [rng.random() < 0.5 for _ in ages[2:]]
    if minority:
        return [_Member(a, m, minority_name(rng)) for a, m in zip(ages, sexes, strict=False)]
    head_name = person_name(rng)
    family = surname_of(head_name)
    members = [_Member(ages[0], sexes[0], head_name)]
    for position, (age, male) in enumerate(zip(ages[1:], sexes[1:], strict=False), start=1):
        same_surname = position >= 2 and age < ages[0]
        members.append(_Member(age, male, person_name(rng, family if same_surname else None)))
    return members


def _birth_date(rng: random.Random, age: int, today: date) -> date:
    born = date(today.year - age, 1, 1) + timedelta(days=rng.randrange(365))
    return born if born <= today else born - timedelta(days=365)


def build_population(rng: random.Random, geography: Geography, today: date) -> tuple[Person, ...]:
    """Fills every building with its planned number of residents."""
    numbers = _Numbers(rng)
    persons: list[Person] = []
    household = 0
    for building in geography.buildings:
        left = geography.occupants[building.address_id]
        grid = geography.grid_by_code[building.grid_code]
        while left > 0:
            household += 1
            kind = rng.choices(("户籍", "流动", "境外"), (840, 155, 5))[0]
            minority = kind != "境外" and rng.random() < 0.01
            members = _household_members(rng, left, minority)
            if kind == "境外":
                members = [_Member(m.age, m.male, foreign_name(rng)) for m in members]
            left -= len(members)
            area, hjdz = _origin(rng, kind, geography.county_code, building.standard_address)
            landline = (
                numbers.landline()
                if any(m.age >= 60 for m in members) and rng.random() < 0.35
                else None
            )
            mobiles = [
                numbers.mobile() if rng.random() < _mobile_share(m.age) else None for m in members
            ]
            for member, mobile in zip(members, mobiles, strict=True):
                birth = _birth_date(rng, member.age, today)
                if landline and member.age >= 60:
                    phone: str | None = landline
                elif mobile:
                    phone = mobile
                else:
                    phone = next((m for m in mobiles if m), None)
                dying = 0.05 if member.age >= 75 else 0.015
                persons.append(
                    Person(
                        index=len(persons),
                        id_number=numbers.id_number(area, birth, member.male),
                        name=member.name,
                        gender="男" if member.male else "女",
                        birth_date=birth,
                        population_type=kind,
                        deregistered=rng.random() < dying,
                        household=household,
                        address_id=building.address_id,
                        grid_code=grid.code,
                        community_code=grid.community_code,
                        mobile=mobile,
                        phone=phone,
                        hjdz=hjdz,
                    )
                )
    return tuple(persons)


def _mobile_share(age: int) -> float:
    if age < 14:
        return 0.0
    if age < 18:
        return 0.5
    if age < 70:
        return 0.97
    return 0.7 if age < 80 else 0.4


def _origin(rng: random.Random, kind: str, county_code: str, home: str) -> tuple[str, str | None]:
    """Area code of the identity number and the household-registration address."""
    if kind == "境外":
        return "932" + rng.choice(NATIONALITIES), None
    if kind == "流动":
        code, province = rng.choice(OTHER_AREAS)
        return code, f"{province}{rng.choice(VILLAGE_NAMES)}村{rng.randint(1, 12)}组"
    if rng.random() < 0.12:
        code, province = rng.choice(OTHER_AREAS[4:])
        return code, home
    return county_code, (home if rng.random() < 0.9 else None)


def shared_phones(persons: tuple[Person, ...]) -> set[str]:
    """Phones that more than one person gives."""
    counts = Counter(p.phone for p in persons if p.phone)
    return {phone for phone, n in counts.items() if n > 1}
