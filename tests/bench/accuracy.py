"""How close the merged store is to the generator's ground truth (``make accuracy``).

Not collected by pytest. Runs ``gridhub demo``'s whole path (the four simulated
systems, the roster folder, the embedded broker and store) on a county of
``--residents`` people (default 20,000), then compares ``grid.resident`` and
``grid.area`` with what the generator knows about every person:

- **residents**: every valid 公民身份号码 on an accepted record of any source is
  one resident (identity.md); missing and extra residents, and false merges
  (a row whose ID belongs to no person, or two rows of one person);
- **linking**: tickets and incidents against the person who really called or
  reported. Precision = correct links / links; recall = correct links /
  *linkable* records, those whose evidence is enough by identity.md (a valid ID
  number, or an unmasked phone that the person records of exactly one resident
  show and a name that does not contradict);
- **fields**: name, gender, birth date, phone, grid, community, population type
  and deregistration of each resident against the person (the grid where the
  placement chain of reference-data.md must put it: its ``syrk`` row's, when
  police know it, else its home's);
- **grids**: per unified grid, every count of ``grid.area`` against counts made
  from the persons (residents, floating, deregistered, 80+, party members,
  双报到, assistance), the party activities (volunteer hours), and the tickets
  and incidents: one linked by identity.md's rules counts in its resident's
  grid, any other where the generator put its own address, coordinates or
  police zone (``County.ticket_places``/``incident_places``); unlinked tickets
  placed only in a community count in ``unplaced_nearby``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gridhub.simulators.county import County, generate_county
from gridhub.simulators.population import Person
from gridhub.streams.normalize import CHINA_TZ, normalize_id_number, normalize_name, normalize_phone
from rich.console import Console
from rich.table import Table

from gridhub.config import load_settings
from gridhub.demo import run_demo
from gridhub.logs import configure_logging
from gridhub.store.client import close_embedded, open_client

HONORIFICS = ("先生", "女士")


def valid(raw: Any) -> str | None:
    return normalize_id_number(None if raw is None else str(raw)).value


def expected_ids(county: County) -> set[str]:
    """Valid ID numbers on every record the sources offer (the residents there must be)."""
    found: set[str | None] = set()
    found |= {valid(r["gmsfhm"]) for r in county.syrk_rows}
    found |= {valid(r["bjrsfzh"]) for r in county.jq_rows}
    found |= {valid(m["idCard"]) for m in county.party_members}
    found |= {valid(r["sfzh"]) for r in county.jzdx_rows}
    found |= {valid(t["callerIdCard"]) for t in county.hotline_tickets}
    for rows in county.elderly_rosters.values():
        found |= {valid(r["身份证号码"]) for r in rows}
    for rows in county.disability_rosters.values():
        found |= {valid(r["身份证号"]) for r in rows}
    return {i for i in found if i is not None}


def observed(county: County) -> tuple[dict[str, set[str]], set[str]]:
    """Per valid ID: the valid, unmasked phones its person records carry (identity.md: the
    resident's phone is one of them, or none); and the IDs some record gives an address."""
    phones: dict[str, set[str]] = defaultdict(set)
    addressed: set[str] = set()

    def saw(id_text: Any, phone: Any, address: Any = None) -> None:
        id_number = valid(id_text)
        if id_number is None:
            return
        value = normalize_phone(None if phone is None else str(phone)).value
        if value:
            phones[id_number].add(value)
        if address:
            addressed.add(id_number)

    for row in county.syrk_rows:
        saw(row["gmsfhm"], row["lxdh"], row["jzdz"] or row["dzbm"])
    for member in county.party_members:
        saw(member["idCard"], member["mobile"], member.get("residenceAddress"))
    for row in county.jzdx_rows:
        if not row["deleted"]:
            saw(row["sfzh"], row["lxdh"], row["jtzz"])
    for rows in county.elderly_rosters.values():
        for row in rows:
            saw(row["身份证号码"], row["联系电话"])
    return phones, addressed


def current_assistance(
    county: County, today: date, phones: dict[str, set[str]], names: dict[str, str]
) -> set[str]:
    """IDs receiving assistance today (outputs.md): a ``jzdx`` type not ended and not
    soft-deleted, or a listing in the newest month of a roster; a roster row whose ID a
    spreadsheet mangled counts for the one resident whose records show its phone, when
    the names agree (identity.md rule 2)."""
    found = {
        valid(r["sfzh"])
        for r in county.jzdx_rows
        if not r["deleted"] and (r["jsrq"] is None or r["jsrq"] > today)
    }
    if county.elderly_rosters:
        newest = county.elderly_rosters[max(county.elderly_rosters)]
        found |= {valid(r["身份证号码"]) for r in newest}
        for row in newest:
            phone = normalize_phone(row["联系电话"] or None).value
            owners = phones.get(phone or "", set())
            if valid(row["身份证号码"]) is None and len(owners) == 1:
                (owner,) = owners
                if normalize_name(row["姓名"]) == normalize_name(names[owner]):
                    found.add(owner)
    if county.disability_rosters:
        newest = county.disability_rosters[max(county.disability_rosters)]
        found |= {valid(r["身份证号"]) for r in newest}
    return {i for i in found if i is not None}


def name_fits(record_name: str | None, person: Person) -> bool:
    """identity.md: equal, or only a surname + 先生/女士."""
    if not record_name:
        return False
    name = normalize_name(record_name)
    if name == normalize_name(person.name):
        return True
    return name.endswith(HONORIFICS) and person.name.startswith(name[:-2]) and len(name) > 2


def ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} = {100 * part / whole:.2f}%" if whole else "n/a (0)"


def measure(county: County, settings_path: Path) -> list[tuple[str, str]]:
    settings = load_settings(settings_path)
    client = open_client(settings)
    by_id = {p.id_number: p for p in county.persons}
    placed_by_police = county.truth_police().residents
    phones_seen, addressed = observed(county)

    def grid_of(person: Person) -> tuple[str | None, str | None]:
        """Where the placement chain must put the person: as its syrk row places it (the
        generator knows which rows only a police zone or nothing places), else at home
        when some record gives an address, else nowhere (a roster gives none)."""
        expected = placed_by_police.get(person.id_number)
        if expected is not None:
            return expected["grid_code"], expected["community_code"]
        if person.id_number in addressed:
            return person.grid_code, person.community_code
        return None, None

    rows = client.query(
        "SELECT resident_key, id_number, name, gender, birth_date, phone, grid_code, "
        "community_code, population_type, deregistered, has(sources, 'police'), placement "
        "FROM grid.resident FINAL"
    ).result_rows
    report: list[tuple[str, str]] = []

    # residents
    expected = expected_ids(county)
    stored_ids = Counter(row[1] for row in rows if row[1])
    without_id = sum(1 for row in rows if not row[1])
    missing = expected - set(stored_ids)
    extra = set(stored_ids) - expected
    doubled = [i for i, n in stored_ids.items() if n > 1]
    unknown = [i for i in stored_ids if i not in by_id]
    report += [
        ("residents expected (valid IDs in the sources)", str(len(expected))),
        ("residents stored", f"{len(rows)} ({without_id} without an ID number)"),
        ("resident count error", f"{len(rows) - len(expected):+d}"),
        ("missing / extra residents", f"{len(missing)} / {len(extra)}"),
        ("false merges (a person twice, or an ID of no one)", f"{len(doubled) + len(unknown)}"),
    ]

    # linking
    key_to_id = {row[0]: row[1] for row in rows}
    phones: dict[str, set[str]] = defaultdict(set)  # the phones the sources show
    known = {i for i in stored_ids if i in by_id}
    for id_number, shown in phones_seen.items():
        if id_number in known:
            for phone in shown:
                phones[phone].add(id_number)
    links = dict(
        ((source, key), resident)
        for source, key, resident in client.query(
            "SELECT source, source_key, argMax(resident_key, ingested_at) FROM grid.events FINAL "
            "WHERE (source, entity) IN (('hotline', 'tickets'), ('police', 'jq')) "
            "GROUP BY source, source_key"
        ).result_rows
    )
    linked = correct = linkable = found = by_rule = 0
    linked_by_rule: dict[tuple[str, str], str] = {}  # what identity.md links, by the sources
    callers, reporters = county.ticket_callers, county.incident_reporters
    records = [
        ("hotline", t["ticketNo"], t["callerIdCard"], t["callerPhone"], t["callerName"],
         callers.get(t["ticketNo"]))
        for t in county.hotline_tickets
    ]  # fmt: skip
    records += [
        ("police", r["jqbh"], r["bjrsfzh"], r["bjrdh"], r["bjrxm"], reporters.get(r["jqbh"]))
        for r in county.jq_rows
    ]
    for source, key, id_text, phone_text, name, truth in records:
        resident = links.get((source, key))
        linked_to = key_to_id.get(resident) if resident else None
        phone = normalize_phone(phone_text).value
        owners = phones.get(phone or "", set())
        if resident:
            linked += 1
            correct += linked_to is not None and linked_to == truth
            by_rule += (
                linked_to != truth
                and valid(id_text) is None
                and owners == {linked_to}
                and name_fits(name, by_id[linked_to])
            )
        by_id_number = valid(id_text)
        if by_id_number in known:
            linked_by_rule[(source, key)] = str(by_id_number)
        elif by_id_number is None and len(owners) == 1:
            (only,) = owners
            if name_fits(name, by_id[only]):
                linked_by_rule[(source, key)] = only
        if truth is None or truth not in known:
            continue
        by_phone = owners == {truth}
        if valid(id_text) == truth or (by_phone and name_fits(name, by_id[truth])):
            linkable += 1
            found += linked_to == truth
    report += [
        ("linking precision (tickets + incidents)", ratio(correct, linked)),
        (
            "  of the wrong links, made by rule 2 as identity.md says (one known resident "
            "shows the phone, the name fits; someone else really called from it)",
            f"{by_rule}/{linked - correct}",
        ),
        ("linking recall of linkable records", ratio(found, linkable)),
    ]

    # fields
    checks: dict[str, list[bool]] = defaultdict(list)
    misplaced: Counter[str] = Counter()
    for row in rows:
        _, id_number, name, gender, born, phone, grid, community, kind, gone, police, how = row
        person = by_id.get(id_number) if id_number else None
        if person is None:
            continue
        checks["name"].append(name == normalize_name(person.name))
        checks["gender"].append(gender == person.gender)
        checks["birth_date"].append(born == person.birth_date)
        seen = phones_seen.get(id_number, set())
        checks["phone"].append(phone in seen if seen else phone is None)
        expected_grid, expected_community = grid_of(person)
        checks["grid_code"].append(grid == expected_grid)
        if grid != expected_grid:
            misplaced[how] += 1
        if expected_grid is not None:
            checks["community_code"].append(community == expected_community)
        if police:
            checks["population_type"].append(kind == person.population_type)
            checks["deregistered"].append(bool(gone) == person.deregistered)
    for field_name, results in checks.items():
        report.append((f"field {field_name}", ratio(sum(results), len(results))))
    report.append(("wrong grid, by placement method", ", ".join(
        f"{how} {n}" for how, n in misplaced.most_common()) or "none"))  # fmt: skip

    # grids
    today = datetime.now(CHINA_TZ).date()
    names = ("residents", "floating_population", "deregistered", "elderly_80_plus",
             "party_members", "double_report_members", "assistance_recipients",
             "volunteer_hours_30d")  # fmt: skip
    truth_counts: dict[str, list[float]] = defaultdict(lambda: [0] * len(names))
    members = {valid(m["idCard"]): m for m in county.party_members}
    assisted = current_assistance(
        county, today, phones, {i: person.name for i, person in by_id.items()}
    )
    for id_number in known:
        person = by_id[id_number]
        grid_code, community = grid_of(person)
        if grid_code is None:
            continue
        counts = truth_counts[grid_code]
        by_police = id_number in placed_by_police  # only police say these two
        member = members.get(id_number)
        active = member is not None and member["status"] == "在册"
        counts[0] += 1
        counts[1] += by_police and person.population_type == "流动"
        counts[2] += by_police and person.deregistered
        counts[3] += person.age(today) >= 80
        counts[4] += active
        counts[5] += active and (member or {}).get("reportCommunityCode") == community
        counts[6] += id_number in assisted
    for grid, hours in county.volunteer_hours(datetime.now(UTC) - timedelta(days=30)).items():
        truth_counts[grid][7] += hours
    area = {
        row[0]: list(row[1:])
        for row in client.query(
            f"SELECT grid_code, {', '.join(names)} FROM grid.area FINAL"
        ).result_rows
    }
    for index, column in enumerate(names):
        exact = sum(
            1 for grid, counts in area.items() if counts[index] == truth_counts[grid][index]
        )
        report.append((f"grids with exact {column}", ratio(exact, len(area))))
    report += record_counts(client, county, records, linked_by_rule, grid_of, by_id)
    client.close()
    return report


def record_counts(
    client: Any,
    county: County,
    records: list[tuple[str, str, Any, Any, Any, str | None]],
    linked_by_rule: dict[tuple[str, str], str],
    grid_of: Any,
    by_id: dict[str, Person],
) -> list[tuple[str, str]]:
    """Per grid, the ticket and incident counts of ``grid.area`` against the generator: a
    record linked by identity.md counts in its resident's grid, any other where its own
    address, coordinates or zone place it (the generator knows where); 30-day windows as
    of the area's last refresh (rows are rewritten only when a count changes)."""
    (refreshed,) = client.query("SELECT max(updated_at) FROM grid.area FINAL").result_rows[0]
    month_ago = refreshed.replace(tzinfo=UTC) - timedelta(days=30)
    grid_community = dict(
        client.query("SELECT grid_code, community_code FROM grid.grid_map").result_rows
    )
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    nearby: Counter[str] = Counter()
    tickets = {t["ticketNo"]: t for t in county.hotline_tickets}
    incidents = {r["jqbh"]: r for r in county.jq_rows}
    for source, key, *_ in records:
        places = county.ticket_places if source == "hotline" else county.incident_places
        grid, community = places[key]
        owner = linked_by_rule.get((source, key))
        if owner is not None and grid_of(by_id[owner])[0] is not None:
            grid = grid_of(by_id[owner])[0]
        if source == "hotline":
            ticket = tickets[key]
            if grid is None:
                nearby[community or ""] += owner is None and community is not None
                continue
            created = datetime.fromtimestamp(ticket["createTime"] / 1000, UTC)
            expected[grid][0] += created >= month_ago
            expected[grid][1] += ticket["status"] not in ("办结", "回访")
        elif grid is not None:
            reported = incidents[key]["bjsj"].replace(tzinfo=CHINA_TZ)
            expected[grid][2] += reported >= month_ago
    area = client.query(
        "SELECT grid_code, hotline_tickets_30d, hotline_open, incidents_30d, unplaced_nearby "
        "FROM grid.area FINAL"
    ).result_rows
    columns = ("hotline_tickets_30d", "hotline_open", "incidents_30d")
    report = [
        (
            f"grids with exact {column}",
            ratio(sum(1 for row in area if row[1 + i] == expected[row[0]][i]), len(area)),
        )
        for i, column in enumerate(columns)
    ]
    exact = sum(1 for row in area if row[4] == nearby[grid_community[row[0]]])
    report.append(("grids with exact unplaced_nearby (per community)", ratio(exact, len(area))))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("gridhub-accuracy"))
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="compare the store a previous run left in --workdir again (same seed and size)",
    )
    args = parser.parse_args()
    configure_logging(level=logging.WARNING)
    console = Console()
    if args.measure_only:
        county = generate_county(args.residents, seed=args.seed)
    else:
        if args.workdir.exists():
            shutil.rmtree(args.workdir)
        quiet = Console(quiet=True)
        county = run_demo(
            args.workdir, residents=args.residents, seed=args.seed, console=quiet
        ).county
        close_embedded()
    report = measure(county, args.workdir / "gridhub.toml")
    table = Table(
        "measure", "value", title=f"accuracy at {args.residents} residents (seed {args.seed})"
    )
    for name, value in report:
        table.add_row(name, value)
    console.print(table)


if __name__ == "__main__":
    main()
