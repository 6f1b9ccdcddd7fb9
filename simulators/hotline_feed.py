"""12345 hotline tickets as the open API returns them.

Dicts are shaped exactly like the items of ``GET /open/api/v1/tickets``
(spec/sources/hotline-12345.md): camelCase keys, epoch-millisecond integers.
Callers are residents or strangers (strangers' numbers start ``171``, which
no resident has); identity is usually thin: masked phones, ``匿名``,
``王先生``, rarely an ID number.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from gridhub.simulators.addressing import (
    VARIANT_KINDS,
    nonmatching_address,
    render_variant,
    vague_address,
)
from gridhub.simulators.geography import Building, Geography
from gridhub.simulators.names import person_name, surname_of
from gridhub.simulators.population import Person
from gridhub.simulators.sampling import epoch_ms, moment, pick

Row = dict[str, Any]

CATEGORIES = (
    ("城乡建设", "物业管理", "县住建局", "小区物业长期不打扫楼道，垃圾堆放。"),
    ("城乡建设", "违章建筑", "县住建局", "楼下有人私自搭建彩钢棚。"),
    ("社会保障", "低保", "县民政局", "咨询低保申请需要哪些材料。"),
    ("社会保障", "养老保险", "县人社局", "养老金本月未按时到账。"),
    ("环境保护", "噪音扰民", "县生态环境局", "附近工地夜间施工噪音很大。"),
    ("交通运输", "道路破损", "县交通运输局", "路面坑洼，雨天积水严重。"),
    ("市场监管", "食品安全", "县市场监管局", "在附近超市买到过期食品。"),
    ("卫生健康", "医疗服务", "县卫健委", "社区卫生服务站看病排队时间长。"),
    ("公共安全", "消防隐患", "县消防救援大队", "楼道内电动车充电，存在消防隐患。"),
)
OPEN_STATES = ("受理", "派单", "处置中")


def _caller_name(rng: random.Random, name: str) -> str:
    r = rng.random()
    if r < 0.08:
        return "匿名"
    if r < 0.5 and "·" not in name:
        surname: str = surname_of(name)
        return surname + rng.choice(("先生", "女士"))
    return name


def _caller_phone(rng: random.Random, phone: str) -> str:
    if phone.startswith("0"):
        return f"{phone[:4]}-{phone[4:]}"
    return f"{phone[:3]}****{phone[7:]}" if rng.random() < 0.55 else phone


Place = tuple[str | None, str | None]
"""(grid, community) where the placement chain of reference-data.md must put a record."""


def _place(
    rng: random.Random, geo: Geography, building: Building
) -> tuple[str, float | None, float | None, Place]:
    """Address text and optional app coordinates of the ticket, and where they place it:
    a standard address its grid, coordinates the grid they fall in, a community's name
    only that community, and text that matches nothing nowhere."""
    grid = geo.grid_by_code[building.grid_code]
    community = geo.community_by_code[grid.community_code]
    in_grid: Place = (grid.code, grid.community_code)
    lng, lat = grid.point_inside(rng)
    r = rng.random()
    if r < 0.1 and grid.has_polygon:
        return "", lng, lat, in_grid
    without_point: Place
    if r < 0.2:
        text, without_point = building.town_name + community.name, (None, community.code)
    elif r < 0.35:
        text, without_point = vague_address(building, rng), (None, None)
    elif r < 0.5:
        text, without_point = nonmatching_address(building, rng), (None, None)
    else:
        text = render_variant(building, rng.choice(VARIANT_KINDS), rng)
        without_point = in_grid
    if rng.random() < 0.2:  # coordinates place only in a grid drawn as a polygon
        return text, lng, lat, in_grid if grid.has_polygon else without_point
    return text, None, None, without_point


def _progress(
    rng: random.Random, created: datetime, end: datetime
) -> tuple[str, datetime, datetime | None, str | None]:
    """Status, last update, finish time and satisfaction for a ticket of this age."""
    age_days = (end - created).days
    if age_days < 3:
        status = rng.choice(OPEN_STATES)
    else:
        status = rng.choices(("处置中", "办结", "回访", "退单"), (10, 30, 55, 5))[0]
    span = max(60, int((end - created).total_seconds()) - 60)
    updated = created + timedelta(seconds=rng.randint(60, span))
    finished = updated if status in ("办结", "回访") else None
    satisfaction = rng.choice(("满意", "满意", "基本满意", "不满意")) if status == "回访" else None
    return status, updated, finished, satisfaction


def build_tickets(
    rng: random.Random,
    geo: Geography,
    callers: Sequence[Person],
    today: date,
    truth: dict[str, str | None] | None = None,
    places: dict[str, Place] | None = None,
) -> list[Row]:
    """Tickets created in the last 60 days (about one per 20 residents).

    ``truth``, when given, receives each ticket's caller (``ticketNo`` -> 18-character ID
    number, or None for a caller who lives elsewhere): what linking should find; and
    ``places`` where the ticket's own address or coordinates place it."""
    end = datetime.combine(today, datetime.min.time())
    tickets: list[Row] = []
    identified: list[tuple[Row, Person]] = []
    serial: dict[date, int] = {}
    for _ in range(max(20, len(callers) // 20)):
        created = moment(rng, end, 60)
        caller = rng.choice(callers) if rng.random() < 0.7 else None
        if caller is not None:
            building = geo.building_by_id[caller.address_id]
            name = _caller_name(rng, caller.name)
            phone = caller.phone or caller.mobile or f"171{rng.randrange(10**8):08d}"
        else:
            building = rng.choice(geo.buildings)
            name = _caller_name(rng, person_name(rng))
            phone = f"171{rng.randrange(10**8):08d}"
        category, subcategory, dept, content = rng.choice(CATEGORIES)
        address, lng, lat, place = _place(rng, geo, building)
        status, updated, finished, satisfaction = _progress(rng, created, end)
        serial[created.date()] = serial.get(created.date(), 0) + 1
        ticket = {
            "ticketNo": f"12345-{created:%Y%m%d}-{serial[created.date()]:06d}",
            "createTime": epoch_ms(created) + rng.randrange(1000),
            "updateTime": epoch_ms(updated) + rng.randrange(1000),
            "callerName": name,
            "callerPhone": _caller_phone(rng, phone),
            "callerIdCard": None,
            "address": address,
            "lng": lng,
            "lat": lat,
            "category": category,
            "subcategory": subcategory,
            "content": content,
            "status": status,
            "handleDept": None if status == "受理" else dept,
            "deadline": epoch_ms(created + timedelta(days=rng.choice((3, 5, 10, 15)))),
            "finishTime": epoch_ms(finished) if finished else None,
            "satisfaction": satisfaction,
            "urgent": 1 if rng.random() < 0.05 else 0,
        }  # fmt: skip
        tickets.append(ticket)
        if truth is not None:
            truth[str(ticket["ticketNo"])] = caller.id_number if caller else None
        if places is not None:
            places[str(ticket["ticketNo"])] = place
        if caller is not None and name != "匿名":
            identified.append((ticket, caller))
    for ticket, person in pick(rng, identified, 0.03, 2):
        ticket["callerIdCard"] = person.id_number
    return tickets
