"""All four systems together: one resident per person.

`gridhub run` pulls the MariaDB and PostgreSQL simulators and the party and
12345 APIs of one county; the store must hold one row per resident with the civil and party
facts merged in, as identity.md and outputs.md define them (soft-deleted rows
contribute nothing; only assistance not ended counts; an active member is
在册).
"""

from __future__ import annotations

import signal
from collections import defaultdict
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gridhub.simulators.civil_db import CivilDatabase
from gridhub.simulators.county import County
from gridhub.simulators.hotline_api import HotlineApiServer
from gridhub.simulators.party_api import PartyApiServer
from gridhub.simulators.police_db import PoliceDatabase
from gridhub.streams.normalize import (
    CHINA_TZ,
    normalize_id_number,
    normalize_name,
    normalize_phone,
)

from gridhub.demo import (
    DEMO_HOTLINE_KEY,
    DEMO_HOTLINE_SECRET,
    DEMO_PARTY_TOKEN,
    write_config,
)
from tests.e2e.conftest import HubProcess, open_store

pytestmark = pytest.mark.e2e


def expected_assistance(county: County) -> dict[str, set[str]]:
    """Per 18-character ID: the jzdx types current today, from the generator's rows."""
    today = datetime.now(CHINA_TZ).date()
    current: dict[str, set[str]] = defaultdict(set)
    for row in county.jzdx_rows:
        id18 = normalize_id_number(row["sfzh"]).value
        if id18 is None or row["deleted"]:
            continue
        current[id18]  # a live row makes the person a civil-affairs resident
        if row["jsrq"] is None or row["jsrq"] > today:
            current[id18].add(row["jzlx"])
    return current


def expected_members(county: County) -> dict[str, tuple[bool, str]]:
    """Per 18-character ID: (active member, branch name) from the generator's members."""
    out = {}
    for member in county.party_members:
        id18 = normalize_id_number(member["idCard"]).value
        if id18 is not None:
            active = member["status"] == "在册"
            out[id18] = (active, member["branchName"] if active else "")
    return out


def phone_owners(county: County) -> dict[str, set[str]]:
    """Phone -> the IDs whose own person records show it (syrk, live jzdx rows, party
    members): what identity.md's rule 2 links by, read straight from the source rows."""
    rows = [(r["gmsfhm"], r["lxdh"]) for r in county.syrk_rows]
    rows += [(r["sfzh"], r["lxdh"]) for r in county.jzdx_rows if not r["deleted"]]
    rows += [(m["idCard"], m["mobile"]) for m in county.party_members]
    owners: dict[str, set[str]] = defaultdict(set)
    for id_text, phone_text in rows:
        id18 = normalize_id_number(id_text).value
        phone = normalize_phone(phone_text).value if phone_text else None
        if id18 and phone:
            owners[phone].add(id18)
    return owners


def caller_of(
    ticket: dict[str, Any], owners: dict[str, set[str]], names: dict[str, str]
) -> str | None:
    """The ID a ticket belongs to by identity.md: its valid caller ID, else the one
    resident its unmasked phone belongs to when the name is equal or a surname + 先生/女士."""
    id18 = normalize_id_number(ticket["callerIdCard"]).value
    if id18 is not None:
        return id18
    phone = normalize_phone(ticket["callerPhone"]).value
    candidates = owners.get(phone or "", set())
    if len(candidates) != 1:  # no one, or a phone several residents share
        return None
    (owner,) = candidates
    said = normalize_name(ticket["callerName"] or "")
    name = names.get(owner, "")
    title = said[-2:] in ("先生", "女士") and 1 <= len(said) - 2 < len(name)
    return owner if said == name or (title and name.startswith(said[:-2])) else None


def expected_tickets(county: County) -> dict[str, tuple[int, int]]:
    """Per 18-character caller ID: (tickets, open tickets)."""
    out: dict[str, tuple[int, int]] = {}
    owners = phone_owners(county)
    names = {p.id_number: p.name for p in county.persons}
    for ticket in county.hotline_tickets:
        id18 = caller_of(ticket, owners, names)
        if id18 is not None:
            total, still_open = out.get(id18, (0, 0))
            is_open = ticket["status"] not in ("办结", "回访")
            out[id18] = (total + 1, still_open + int(is_open))
    return out


def test_civil_party_and_hotline_records_join_the_police_residents(
    tmp_path: Path, county: County, police: PoliceDatabase, civil: CivilDatabase
) -> None:
    county.write_reference(tmp_path / "reference")
    members, activities = county.party_members, county.party_activities
    tickets = county.hotline_tickets
    with (
        PartyApiServer(members, activities, DEMO_PARTY_TOKEN) as party,
        HotlineApiServer(tickets, DEMO_HOTLINE_KEY, DEMO_HOTLINE_SECRET) as hotline,
    ):
        config = write_config(tmp_path, police.dsn, civil.dsn, party.base_url, hotline.base_url)
        hub = HubProcess(config)
        try:
            hub.start()
            status = hub.wait_caught_up()
            assert status["sources"]["civil"]["records"] == len(county.jzdx_rows)
            assert status["sources"]["party"]["records"] == len(members) + len(activities)
            assert status["sources"]["hotline"]["records"] == len(tickets)
            assert hub.stop(signal.SIGTERM) == 0
        finally:
            hub.kill()
    expected = expected_assistance(county)
    assert expected and any(expected.values())
    with closing(open_store(tmp_path)) as client:
        rows = client.query(
            "SELECT id_number, assistance, sources FROM grid.resident FINAL "
            "WHERE has(sources, 'civil')"
        ).result_rows
        stored = {id_number: (set(assistance), sources) for id_number, assistance, sources in rows}
        assert {i: a for i, (a, _) in stored.items()} == dict(expected)
        police_ids = set(county.truth_police().residents)
        member_ids = set(expected_members(county))
        caller_ids = set(expected_tickets(county))
        for id_number, (_, sources) in stored.items():
            known = {"civil"}
            if id_number in police_ids:
                known.add("police")
            if id_number in member_ids:
                known.add("party")
            if id_number in caller_ids:
                known.add("hotline")
            assert sources == sorted(known), id_number
        events = dict(
            client.query(
                "SELECT source, count() FROM grid.events FINAL "
                "WHERE entity != 'activities' GROUP BY source"
            ).result_rows
        )
        placed_activities = client.query(
            "SELECT source_key, grid_code, resident_key FROM grid.events FINAL "
            "WHERE entity = 'activities'"
        ).result_rows
        assert len(placed_activities) == len(activities)  # one event per activity, none unlinked
        primary = county.geography.primary_grid
        by_id = {a["activityId"]: a for a in activities}
        for activity_id, grid_code, resident_key in placed_activities:
            assert resident_key is None  # a fact about a grid, not about a person
            assert grid_code == primary[("party", by_id[activity_id]["partyGridCode"])]
        assert events["civil"] == len(county.jzdx_rows)
        membership = client.query(
            "SELECT id_number, is_party_member, party_branch FROM grid.resident FINAL "
            "WHERE has(sources, 'party')"
        ).result_rows
        assert {i: (m, b) for i, m, b in membership} == expected_members(county)
        dead = client.query(
            "SELECT count() FROM grid.dead_letters FINAL WHERE source = 'party'"
        ).result_rows[0][0]
        assert events["party"] + dead == len(members)
        assert events["hotline"] == len(tickets)  # linked or not, none is a dead letter
        calls = client.query(
            "SELECT id_number, hotline_tickets, hotline_open FROM grid.resident FINAL "
            "WHERE hotline_tickets > 0"
        ).result_rows
        assert {i: (t, o) for i, t, o in calls} == expected_tickets(county)
        unlinked = client.query(
            "SELECT count() FROM grid.unlinked FINAL WHERE source = 'hotline'"
        ).result_rows[0][0]
        assert unlinked == len(tickets) - sum(t for t, _ in expected_tickets(county).values())
        check_area(client, county)


def check_area(client: Any, county: County) -> None:
    """``grid.area`` against counts made here, in Python, from the stored residents and the
    generator's activities (outputs.md, "How the counts are read")."""
    today = datetime.now(CHINA_TZ).date()
    try:
        eighty = today.replace(year=today.year - 80)
    except ValueError:  # 29 February, eighty years after a year without one
        eighty = today.replace(year=today.year - 80, day=28)
    expected: dict[str, list[Any]] = {g.code: [0] * 7 + [0.0] for g in county.geography.grids}
    residents = client.query(
        "SELECT grid_code, population_type, deregistered, is_party_member, "
        "double_report_community = community_code, length(assistance) > 0, birth_date "
        "FROM grid.resident FINAL WHERE grid_code IS NOT NULL"
    ).result_rows
    assert residents
    for grid, kind, gone, member, reported, assisted, born in residents:
        counts = expected[grid]
        counts[0] += 1
        counts[1] += kind == "流动"
        counts[2] += bool(gone)
        counts[3] += bool(member)
        counts[4] += bool(member and reported)
        counts[5] += bool(assisted)
        counts[6] += born is not None and born <= eighty
    for grid, hours in county.volunteer_hours(datetime.now(UTC) - timedelta(days=30)).items():
        expected[grid][7] += hours
    stored = {
        row[0]: list(row[1:])
        for row in client.query(
            "SELECT grid_code, residents, floating_population, deregistered, party_members, "
            "double_report_members, assistance_recipients, elderly_80_plus, "
            "volunteer_hours_30d FROM grid.area FINAL"
        ).result_rows
    }
    assert stored == expected
    assert sum(counts[7] for counts in expected.values()) > 0  # the window holds activities
