"""``grid.area``: one row per unified grid, computed by ClickHouse from the merged tables.

Why ClickHouse computes it, and not a stream stage: every count of
``outputs.md`` is a count over rows the store already holds (residents placed
in the grid; the newest version of each ticket, incident and activity), and
three of them are 30-day windows that move with the clock, not with events:
a ticket created 30 days ago leaves ``hotline_tickets_30d`` at midnight
without any record arriving. An aggregate over the stored rows is exact by
construction, whatever order, duplicates or replays the rows came in, and is
evaluated against today's date each time it runs.

:func:`refresh_area` writes only the grids whose counts differ from the stored
row (``grid.area FINAL``), with a new ``version``, so a reference reload that
moves a building changes exactly the two grids concerned. The grid map itself
(every grid of ``grids.csv``, with its community and street) lives in
``grid.grid_map`` (:func:`load_grid_map`), so a grid without residents has a
row of zeros.
"""

from __future__ import annotations

import threading
import time

from clickhouse_connect.driver.client import Client

from gridhub.logs import get_logger
from gridhub.reference import ReferenceData

log = get_logger("store.area")

OPEN_UNTIL = ("办结", "回访")
"""A ticket is open while its status is none of these (hotline-12345.md)."""

COUNTS = (
    "residents",
    "floating_population",
    "deregistered",
    "party_members",
    "double_report_members",
    "assistance_recipients",
    "elderly_80_plus",
    "hotline_tickets_30d",
    "hotline_open",
    "incidents_30d",
    "volunteer_hours_30d",
    "unplaced_nearby",
)
"""The counts of a grid, as ``grid.area`` names them."""

_LATEST = """
    SELECT source_key,
           argMax(payload, event_time) AS payload,
           argMax(resident_key, event_time) AS resident_key,
           argMax(grid_code, event_time) AS own_grid
    FROM {db}.events FINAL
    WHERE source = '{source}' AND entity = '{entity}'
    GROUP BY source_key
"""
"""The newest version of every record of one entity (the events table keeps each version)."""

_WHERE_COUNTED = """
    SELECT if(l.resident_key IS NOT NULL AND r.grid_code != '', r.grid_code, l.own_grid)
               AS grid_code,
           l.payload AS payload
    FROM ({latest}) AS l
    LEFT JOIN (SELECT resident_key, ifNull(grid_code, '') AS grid_code
               FROM {db}.resident FINAL) AS r
        ON r.resident_key = l.resident_key
"""
"""A linked record counts in its resident's grid, an unlinked one where it was placed."""

AREA_SQL = """
WITH toDate32(now('Asia/Shanghai')) AS today,
     now64(3) - INTERVAL 30 DAY AS month_ago
SELECT g.grid_code AS grid_code,
       g.grid_name AS grid_name,
       g.community_code AS community_code,
       g.street_code AS street_code,
       toUInt32(r.residents) AS residents,
       toUInt32(r.floating_population) AS floating_population,
       toUInt32(r.deregistered) AS deregistered,
       toUInt32(r.party_members) AS party_members,
       toUInt32(r.double_report_members) AS double_report_members,
       toUInt32(r.assistance_recipients) AS assistance_recipients,
       toUInt32(r.elderly_80_plus) AS elderly_80_plus,
       toUInt32(t.hotline_tickets_30d) AS hotline_tickets_30d,
       toUInt32(t.hotline_open) AS hotline_open,
       toUInt32(i.incidents_30d) AS incidents_30d,
       toFloat64(a.volunteer_hours_30d) AS volunteer_hours_30d,
       toUInt32(u.unplaced_nearby) AS unplaced_nearby
FROM {db}.grid_map AS g
LEFT JOIN (
    SELECT grid_code,
           count() AS residents,
           countIf(population_type = '流动') AS floating_population,
           countIf(deregistered) AS deregistered,
           countIf(is_party_member) AS party_members,
           countIf(is_party_member AND double_report_community = community_code)
               AS double_report_members,
           countIf(length(assistance) > 0) AS assistance_recipients,
           countIf(birth_date IS NOT NULL AND birth_date <= subtractYears(today, 80))
               AS elderly_80_plus
    FROM {db}.resident FINAL
    WHERE grid_code IS NOT NULL
    GROUP BY grid_code
) AS r ON r.grid_code = g.grid_code
LEFT JOIN (
    SELECT grid_code,
           countIf(fromUnixTimestamp64Milli(JSONExtractInt(payload, 'createTime')) >= month_ago)
               AS hotline_tickets_30d,
           countIf(JSONExtractString(payload, 'status') NOT IN {open_until}) AS hotline_open
    FROM ({tickets})
    GROUP BY grid_code
) AS t ON t.grid_code = g.grid_code
LEFT JOIN (
    SELECT grid_code,
           countIf(parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'bjsj'), 3,
                                                   'Asia/Shanghai') >= month_ago)
               AS incidents_30d
    FROM ({incidents})
    GROUP BY grid_code
) AS i ON i.grid_code = g.grid_code
LEFT JOIN (
    SELECT own_grid AS grid_code,
           sumIf(JSONExtractFloat(payload, 'hours'),
                 parseDateTime64BestEffortOrNull(JSONExtractString(payload, 'occurredAt'), 3)
                     >= month_ago) AS volunteer_hours_30d
    FROM ({activities})
    WHERE own_grid IS NOT NULL
    GROUP BY grid_code
) AS a ON a.grid_code = g.grid_code
LEFT JOIN (
    SELECT community_code, count() AS unplaced_nearby
    FROM {db}.unlinked FINAL
    WHERE source = 'hotline' AND grid_code IS NULL AND community_code IS NOT NULL
    GROUP BY community_code
) AS u ON u.community_code = g.community_code
"""
"""Every grid of the map with its counts as of now (outputs.md, "How the counts are read")."""


def area_query(database: str) -> str:
    """The SELECT that computes ``grid.area`` rows from the merged tables."""
    db = database
    return AREA_SQL.format(
        db=db,
        open_until=repr(OPEN_UNTIL),
        tickets=_WHERE_COUNTED.format(
            db=db, latest=_LATEST.format(db=db, source="hotline", entity="tickets")
        ),
        incidents=_WHERE_COUNTED.format(
            db=db, latest=_LATEST.format(db=db, source="police", entity="jq")
        ),
        activities=_LATEST.format(db=db, source="party", entity="activities"),
    )


def refresh_area(client: Client, database: str, *, version: int | None = None) -> int:
    """Write the grids whose counts changed since the stored row; returns how many.

    ``version`` (default: now in nanoseconds) must grow with every refresh, so the
    newest computation survives the ReplacingMergeTree.
    """
    version = version or time.time_ns()
    changed = " OR ".join(f"n.{name} != o.{name}" for name in COUNTS)
    names = ", ".join(f"n.{name}" for name in ("grid_code", "grid_name", "community_code",
                                               "street_code", *COUNTS))  # fmt: skip
    sql = f"""
        INSERT INTO {database}.area
        SELECT {names}, {int(version)} AS version, now64(3) AS updated_at
        FROM ({area_query(database)}) AS n
        LEFT JOIN (SELECT * FROM {database}.area FINAL) AS o ON o.grid_code = n.grid_code
        WHERE o.grid_code = '' OR n.grid_name != o.grid_name
              OR n.community_code != o.community_code OR {changed}
    """
    client.command(sql, settings={"join_use_nulls": 0})
    written = client.query(f"SELECT count() FROM {database}.area WHERE version = {int(version)}")
    return int(written.result_rows[0][0])


def load_grid_map(client: Client, database: str, ref: ReferenceData) -> str | None:
    """Replace ``grid.grid_map`` with the grids of ``ref``; returns the fingerprint of the
    map it held before (None when it was empty), so a start with a new map can tell."""
    held = client.query(f"SELECT any(fingerprint) FROM {database}.grid_map").result_rows
    before = str(held[0][0]) if held and held[0][0] else None
    rows = [
        [g.code, g.name, g.community_code, g.street_code, ref.fingerprint]
        for g in ref.grids.values()
    ]
    client.command(f"TRUNCATE TABLE IF EXISTS {database}.grid_map")
    client.insert(
        f"{database}.grid_map",
        rows,
        column_names=["grid_code", "grid_name", "community_code", "street_code", "fingerprint"],
    )
    return before


class AreaRefresher:
    """Keeps ``grid.area`` current from the hub's process (which holds the store).

    It refreshes once rows were stored since the last refresh and ``every`` seconds
    have passed (a backlog does not recompute the areas per batch), and at least
    every ``max_age`` seconds, because the 30-day windows move with the clock.
    ``lock`` is the sink's: one store session, one statement at a time.
    """

    def __init__(
        self,
        client: Client,
        database: str,
        lock: threading.Lock,
        *,
        every: float,
        max_age: float,
    ) -> None:
        self.client = client
        self.database = database
        self.lock = lock
        self.every = every
        self.max_age = max_age
        self.refreshed_at: float | None = None
        self.grids_written = 0
        self._rows_seen = -1

    def maybe_refresh(self, stored_rows: int) -> None:
        """Refresh when due (see the class docstring); a failure is logged and retried on
        the next call, never raised into the caller's loop."""
        if self.refreshed_at is not None:
            since = time.monotonic() - self.refreshed_at
            stale = since >= self.max_age
            if not stale and (stored_rows == self._rows_seen or since < self.every):
                return
        self.refresh(stored_rows)

    def refresh(self, stored_rows: int) -> None:
        """Refresh now."""
        try:
            with self.lock:
                self.grids_written += refresh_area(self.client, self.database)
        except Exception as exc:  # the store may be down; the sink reports that itself
            log.warning("grid.area not refreshed", reason=f"{type(exc).__name__}: {exc}")
            return
        self.refreshed_at = time.monotonic()
        self._rows_seen = stored_rows
