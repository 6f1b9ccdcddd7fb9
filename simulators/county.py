"""A synthetic county: map, people, every source's data, and the ground truth.

``generate_county`` is deterministic for a seed. It is the hub's ground
truth, so it never imports the hub's own normalisation (``gridhub.streams``,
``gridhub.connectors``): each expected value is decided when the generator
writes a record and injects its faults, not by parsing the record back.

Each stage draws from its own random stream (``seed/stage``), so changing
how, say, hotline tickets are made does not reshuffle the police rows.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gridhub.simulators.civil_feed import (
    build_disability_rosters,
    build_elderly_rosters,
    build_jzdx,
    roster_months,
)
from gridhub.simulators.geography import Geography, build_geography
from gridhub.simulators.hotline_feed import build_tickets
from gridhub.simulators.party_feed import build_activities, build_members
from gridhub.simulators.police_feed import (
    PoliceRecord,
    PoliceTruth,
    build_jq,
    build_syrk,
    police_truth,
)
from gridhub.simulators.population import Person, build_population
from gridhub.simulators.sampling import CHINA, pick

Row = dict[str, Any]

COUNTY_NAMES = {"320723": "灌云县"}
MIN_RESIDENTS = 100


@dataclass(frozen=True)
class County:
    """Everything the simulators serve, plus what the hub should make of it.

    Source datasets are shaped exactly as each source delivers them:
    ``syrk_rows``/``jq_rows`` as MariaDB row dicts (naive China-time
    ``gxsj``), ``party_members``/``party_activities`` as API JSON items,
    ``jzdx_rows`` as PostgreSQL rows without ``id``/``updated_at``, rosters
    as ``month -> rows`` keyed by the files' Chinese headers, and
    ``hotline_tickets`` as API JSON items.
    """

    code: str
    name: str
    today: date
    geography: Geography = field(repr=False)
    persons: tuple[Person, ...] = field(repr=False)
    syrk_rows: list[Row] = field(repr=False)
    jq_rows: list[Row] = field(repr=False)
    party_members: list[Row] = field(repr=False)
    party_activities: list[Row] = field(repr=False)
    jzdx_rows: list[Row] = field(repr=False)
    elderly_rosters: dict[str, list[Row]] = field(repr=False)
    disability_rosters: dict[str, list[Row]] = field(repr=False)
    hotline_tickets: list[Row] = field(repr=False)
    police_records: tuple[PoliceRecord, ...] = field(repr=False)
    incident_reporters: dict[str, str | None] = field(repr=False, default_factory=dict)
    """Who reported each incident (``jqbh`` -> ID number; None: someone from elsewhere)."""
    ticket_callers: dict[str, str | None] = field(repr=False, default_factory=dict)
    """Who called each ticket in (``ticketNo`` -> ID number; None: someone from elsewhere)."""
    incident_places: dict[str, tuple[str | None, str | None]] = field(
        repr=False, default_factory=dict
    )
    """Where each incident's own address, point or police zone places it (grid, community)."""
    ticket_places: dict[str, tuple[str | None, str | None]] = field(
        repr=False, default_factory=dict
    )
    """Where each ticket's own address or coordinates place it (grid, community; None for
    what the county's reference data cannot tell)."""

    def write_reference(self, directory: Path) -> None:
        """Writes grids.csv, addresses.csv and crosswalk.csv (UTF-8, header row)."""
        self.geography.write_reference(directory)

    def volunteer_hours(self, since: datetime) -> dict[str, float]:
        """Per unified grid, the hours of the activities since ``since`` (outputs.md: on
        the crosswalk's primary grid of each activity's party grid; a voided one is 0)."""
        hours: dict[str, float] = {}
        for activity in self.party_activities:
            if datetime.fromisoformat(activity["occurredAt"]) >= since:
                grid = self.geography.primary_grid[("party", activity["partyGridCode"])]
                hours[grid] = hours.get(grid, 0.0) + activity["hours"]
        return hours

    def truth_police(self) -> PoliceTruth:
        """Expected ``grid.resident`` rows and dead letters from ``syrk`` alone."""
        return police_truth(self.police_records, self.geography)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pauses the cyclic collector: it would rescan 100k+ fresh objects many times."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def generate_county(
    residents: int, seed: int = 7, county_code: str = "320723", today: date | None = None
) -> County:
    """Builds a county of ``residents`` people.

    Args:
        residents: number of people living in the county (at least 100);
            about 2% of them are missing from ``syrk`` and appear only in
            other sources.
        seed: the same seed (and ``today``) gives the same county.
        county_code: 6-digit code; codes of streets, communities and grids
            are built under it.
        today: the day the data is "as of" (default: today in China).
    """
    if len(county_code) != 6 or not county_code.isdigit():
        raise ValueError(f"county_code must be 6 digits, got {county_code!r}")
    if residents < MIN_RESIDENTS:
        raise ValueError(f"need at least {MIN_RESIDENTS} residents to fit every fault kind")
    with _gc_paused():
        return _generate(residents, seed, county_code, today or datetime.now(CHINA).date())


def _generate(residents: int, seed: int, county_code: str, today: date) -> County:
    def stream(stage: str) -> random.Random:
        return random.Random(f"{seed}/{county_code}/{stage}")

    name = COUNTY_NAMES.get(county_code, "样例县")
    geo = build_geography(stream("geography"), residents, county_code, name)
    persons = build_population(stream("population"), geo, today)

    police_rng = stream("police")
    absent = {p.index for p in pick(police_rng, persons, 0.02, 3)}
    syrk_rows, records = build_syrk(
        police_rng, geo, [p for p in persons if p.index not in absent], today
    )
    mistyped = {r.person.index for r in records if r.dead_reason}
    reporters = [r.person for r in records if not r.dead_reason and not r.person.deregistered]
    reporter_truth: dict[str, str | None] = {}
    incident_places: dict[str, tuple[str | None, str | None]] = {}
    jq_rows = build_jq(police_rng, geo, reporters, today, reporter_truth, incident_places)

    # People whose police record is mistyped appear nowhere else, so no other
    # source can link that record (identity.md rule 2) and it stays a dead letter.
    others = [p for p in persons if p.index not in mistyped]
    living = [p for p in others if not p.deregistered]
    party_rng = stream("party")
    members = build_members(party_rng, geo, others, today)
    activities = build_activities(party_rng, geo, members, today)

    civil_rng = stream("civil")
    household_size: dict[int, int] = {}
    household_head: dict[int, Person] = {}
    for p in persons:
        household_size[p.household] = household_size.get(p.household, 0) + 1
        household_head.setdefault(p.household, p)
    months = roster_months(today)
    caller_truth: dict[str, str | None] = {}
    ticket_places: dict[str, tuple[str | None, str | None]] = {}

    return County(
        code=county_code,
        name=name,
        today=today,
        geography=geo,
        persons=persons,
        syrk_rows=syrk_rows,
        jq_rows=jq_rows,
        party_members=members,
        party_activities=activities,
        jzdx_rows=build_jzdx(civil_rng, geo, living, household_size, household_head, today),
        elderly_rosters=build_elderly_rosters(civil_rng, geo, others, months),
        disability_rosters=build_disability_rosters(civil_rng, geo, others, months),
        hotline_tickets=build_tickets(
            stream("hotline"), geo, living, today, caller_truth, ticket_places
        ),
        police_records=tuple(records),
        incident_reporters=reporter_truth,
        ticket_callers=caller_truth,
        incident_places=incident_places,
        ticket_places=ticket_places,
    )
