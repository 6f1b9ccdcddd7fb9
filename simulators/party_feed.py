"""Party members and activities as the party-building API returns them.

Dicts are shaped exactly like the JSON items of ``GET /api/v2/members`` and
``GET /api/v2/activities`` (spec/sources/party-building.md): camelCase keys,
ISO-8601 strings with ``+08:00``. Only the latest version of each record is
kept here; an API simulator replays them in ``(updatedAt, id)`` order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from gridhub.simulators.addressing import chinese_number, random_variant, vague_address
from gridhub.simulators.geography import Geography
from gridhub.simulators.population import Person
from gridhub.simulators.sampling import iso, moment, pick

Row = dict[str, Any]

ACTIVITY_KINDS = ("志愿服务", "双报到服务", "组织生活")
NOON = time(12)


def _mobile_as_typed(rng: random.Random, mobile: str | None) -> str:
    if mobile is None or rng.random() < 0.1:
        return ""
    r = rng.random()
    if r < 0.12:
        return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    if r < 0.22:
        return f"+86-{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    return mobile


def _id_as_typed(rng: random.Random, id_number: str) -> str:
    if id_number.endswith("X") and rng.random() < 0.4:
        id_number = id_number.lower()
    if rng.random() < 0.03:
        id_number = rng.choice((f" {id_number}", f"{id_number} ", f" {id_number}  "))
    return id_number


def _name_as_typed(rng: random.Random, name: str) -> str:
    if "·" not in name and len(name) >= 2 and rng.random() < 0.03:
        return name[0] + "\u3000" + name[1:]
    if rng.random() < 0.01:
        return name + "\u3000"
    return name


def _status(rng: random.Random, person: Person, today: date) -> str:
    if person.deregistered:
        return "死亡" if person.age(today) >= 70 else "转出"
    return rng.choices(("在册", "转出", "停止党籍"), (95, 4, 1))[0]


def build_members(
    rng: random.Random, geo: Geography, people: Sequence[Person], today: date
) -> list[Row]:
    """About 7% of adults are members; most active, some transferred or deceased."""
    end = datetime.combine(today, datetime.min.time())
    adults = [p for p in people if p.age(today) >= 18 and p.population_type != "境外"]
    chosen = sorted(pick(rng, adults, 0.07, 8), key=lambda p: p.index)
    communities = [c.code for c in geo.communities]
    members: list[Row] = []
    for n, person in enumerate(chosen, start=1):
        community = geo.community_by_code[person.community_code]
        grid_rank = [g.code for g in geo.grids_of_community[community.code]].index(person.grid_code)
        branch = grid_rank // 2 + 1
        age = person.age(today)
        probationary = rng.random() < 0.05
        joined = (
            today - timedelta(days=rng.randint(30, 360))
            if probationary
            else person.birth_date + timedelta(days=365 * rng.randint(18, max(18, age - 1)))
        )
        status = _status(rng, person, today)
        report = None
        if status == "在册" and age <= 60 and rng.random() < 0.4:
            report = community.code if rng.random() < 0.8 else rng.choice(communities)
        joined = min(joined, today)
        updated = max(moment(rng, end, 400), min(datetime.combine(joined, NOON), end))
        building = geo.building_by_id[person.address_id]
        r = rng.random()
        if r < 0.2:
            residence = building.standard_address
        elif r < 0.9:
            residence = random_variant(building, rng)
        else:
            residence = vague_address(building, rng)
        members.append({
            "memberId": f"M{n:07d}",
            "idCard": _id_as_typed(rng, person.id_number),
            "name": _name_as_typed(rng, person.name),
            "gender": person.gender,
            "birthDate": person.birth_date.isoformat(),
            "mobile": _mobile_as_typed(rng, person.mobile),
            "branchCode": f"ZB{community.code}{branch:02d}",
            "branchName": f"{community.name}第{chinese_number(branch)}党支部",
            "partyGridCode": geo.owner_party_area[person.grid_code],
            "memberType": "预备党员" if probationary else "正式党员",
            "joinDate": joined.isoformat(),
            "status": status,
            "reportCommunityCode": report,
            "residenceAddress": residence,
            "updatedAt": iso(updated),
        })  # fmt: skip
    return members


def build_activities(
    rng: random.Random, geo: Geography, members: Sequence[Row], today: date
) -> list[Row]:
    """Activities of the last 90 days; some corrected later, a few voided (hours 0).

    A voided activity keeps its kind and gets ``hours: 0``; a corrected one
    gets new hours. Both carry a later ``updatedAt`` than the original.
    """
    end = datetime.combine(today, datetime.min.time())
    activities: list[Row] = []
    for member in members:
        if member["status"] != "在册":
            continue
        report = member["reportCommunityCode"]
        for _ in range(rng.choice((0, 1, 2, 2, 3, 4, 5))):
            kinds = ACTIVITY_KINDS if report else ACTIVITY_KINDS[::2]
            kind = rng.choice(kinds)
            area = member["partyGridCode"]
            if kind == "双报到服务":
                grid = rng.choice(geo.grids_of_community[report])
                area = geo.owner_party_area[grid.code]
            hours = rng.choice((1.0, 1.5, 2.0)) if kind == "组织生活" else rng.randint(1, 8) / 2
            occurred = moment(rng, end, 90)
            activities.append({
                "activityId": f"A{len(activities) + 1:08d}",
                "memberId": member["memberId"],
                "kind": kind,
                "hours": hours,
                "partyGridCode": area,
                "occurredAt": iso(occurred),
                "updatedAt": iso(min(occurred + timedelta(hours=rng.randint(1, 48)), end)),
            })  # fmt: skip
    corrected = pick(rng, activities, 0.1, 2)
    for activity in corrected[: max(1, len(corrected) // 4)]:
        _revise(rng, activity, 0.0, end)
    for activity in corrected[max(1, len(corrected) // 4) :]:
        _revise(rng, activity, max(0.5, activity["hours"] + rng.choice((-0.5, 0.5, 1.0))), end)
    return activities


def _revise(rng: random.Random, activity: Row, hours: float, end: datetime) -> None:
    """A later correction: new hours (``0`` voids it), a later ``updatedAt``."""
    updated = datetime.fromisoformat(activity["updatedAt"]).replace(tzinfo=None)
    activity["hours"] = hours
    activity["updatedAt"] = iso(min(updated + timedelta(days=rng.randint(1, 10)), end))
